package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
)

// maxBody bounds a request's body: a run's options are a few kilobytes.
const maxBody = 4 << 20

// Server answers the API for a Backend.
type Server struct {
	b   Backend
	log *slog.Logger
	// Ready says whether the agent has finished starting (readiness); nil: always.
	Ready func() error
}

// NewServer serves b.
func NewServer(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{b: b, log: log}
}

// Handler routes the API's calls.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	p := "/" + Version
	// Liveness: the agent answers. Readiness: it has finished starting.
	mux.HandleFunc("GET "+p+"/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET "+p+"/ready", func(w http.ResponseWriter, r *http.Request) {
		if s.Ready != nil {
			if err := s.Ready(); err != nil {
				s.fail(w, r, Unavailable(err))
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET "+p+"/status", handle(s, func(r *http.Request, _ *struct{}) (any, error) {
		return s.b.Status(r.Context())
	}))
	mux.HandleFunc("POST "+p+"/containers", handle(s, func(r *http.Request, req *RunRequest) (any, error) {
		return s.b.Run(r.Context(), *req)
	}))
	mux.HandleFunc("DELETE "+p+"/containers/{ref}", handle(s, func(r *http.Request, _ *struct{}) (any, error) {
		force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
		return struct{}{}, s.b.Remove(r.Context(), RemoveRequest{Container: r.PathValue("ref"), Force: force})
	}))
	mux.HandleFunc("GET "+p+"/interfaces", handle(s, func(r *http.Request, _ *struct{}) (any, error) {
		return s.b.Interfaces(r.Context())
	}))
	mux.HandleFunc("GET "+p+"/networks", handle(s, func(r *http.Request, _ *struct{}) (any, error) {
		return s.b.Networks(r.Context())
	}))
	mux.HandleFunc("POST "+p+"/networks", handle(s, func(r *http.Request, req *CreateNetworkRequest) (any, error) {
		return s.b.CreateNetwork(r.Context(), *req)
	}))
	mux.HandleFunc("DELETE "+p+"/networks/{name}", handle(s, func(r *http.Request, _ *struct{}) (any, error) {
		return s.b.DeleteNetwork(r.Context(), r.PathValue("name"))
	}))
	mux.HandleFunc("GET "+p+"/pools", handle(s, func(r *http.Request, _ *struct{}) (any, error) {
		return s.b.Pools(r.Context())
	}))
	mux.HandleFunc("POST "+p+"/gc", handle(s, func(r *http.Request, req *GCRequest) (any, error) {
		return s.b.GC(r.Context(), *req)
	}))
	mux.HandleFunc("POST "+p+"/attachments", handle(s, func(r *http.Request, req *AttachRequest) (any, error) {
		return s.b.Attach(r.Context(), *req)
	}))
	mux.HandleFunc("POST "+p+"/attachments/release", handle(s, func(r *http.Request, req *DetachRequest) (any, error) {
		return struct{}{}, s.b.Detach(r.Context(), *req)
	}))
	mux.HandleFunc("POST "+p+"/attachments/check", handle(s, func(r *http.Request, req *CheckRequest) (any, error) {
		return struct{}{}, s.b.Check(r.Context(), *req)
	}))
	mux.HandleFunc("POST "+p+"/attachments/collect", handle(s, func(r *http.Request, req *CollectRequest) (any, error) {
		return s.b.Collect(r.Context(), *req)
	}))
	mux.HandleFunc("GET "+p+"/networks/{name}/ready", handle(s, func(r *http.Request, _ *struct{}) (any, error) {
		return map[string]string{"status": "ready"}, s.b.NetworkReady(r.Context(), r.PathValue("name"))
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, NotFound(fmt.Errorf("no such call: %s %s (this agent speaks API %s)", r.Method, r.URL.Path, Version)))
	})
	return mux
}

// handle decodes the body into Req (when it has fields), calls fn and writes its answer
// or its error.
func handle[Req any](s *Server, fn func(*http.Request, *Req) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req := new(Req)
		if r.Method == http.MethodPost {
			dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
			dec.DisallowUnknownFields()
			if err := dec.Decode(req); err != nil && !errors.Is(err, io.EOF) {
				s.fail(w, r, Invalid(fmt.Errorf("request body: %v", err)))
				return
			}
		}
		out, err := fn(r, req)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	k := KindOf(err)
	if k == KindInternal {
		s.log.Warn("api call failed", "call", r.Method+" "+r.URL.Path, "err", err)
	}
	writeJSON(w, k.status(), &Error{Kind: k, Message: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
