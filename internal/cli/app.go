// Package cli is ovn-docker's command line: the spec's commands (create/list/delete
// network, run, rm, ps), status, gc, and the agent itself (daemon). Each command is a
// thin client: it asks the VM's agent over its local API when one runs, and otherwise
// runs the very same service in-process, so either way gives the same results on the
// same state.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/osauth"
	"github.com/ovn-docker/ovn-docker/internal/service"
)

// settings are the global flags, filled from the command line and the environment.
type settings struct {
	cred         string
	credFile     string
	cloud        string
	authURL      string
	region       string
	vifID        string
	networks     []string
	secGroups    []string
	port         api.PortOptions // run's --allowed-address, --qos-policy, --no-port-security
	mode         string
	ovsdb        string
	ovsRunDir    string
	bridge       string
	uplink       string
	stateDir     string
	logLevel     string
	logFormat    string
	timeout      time.Duration
	readyTimeout time.Duration
	standalone   bool
}

// app is what the commands share: settings, output streams and the backend.
type app struct {
	s        settings
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	getenv   func(string) string
	log      *slog.Logger
	redactor *osauth.Redactor

	// fault is the fault-injection hook of test builds (nil otherwise).
	fault func(step string)
	// transport, when set before the first OpenStack call, wraps its HTTP transport.
	transport func(http.RoundTripper) http.RoundTripper
	// credsGiven says the command line named credentials explicitly.
	credsGiven bool

	svc *service.Service // the in-process service, once made
}

// serviceConfig is the service's configuration from the settings.
func (a *app) serviceConfig() service.Config {
	return service.Config{
		Cred: a.s.cred, CredFile: a.s.credFile, Cloud: a.s.cloud, AuthURL: a.s.authURL, Region: a.s.region,
		VIFID: a.s.vifID, Mode: a.s.mode, OVSDB: a.s.ovsdb, Bridge: a.s.bridge, Uplink: a.s.uplink,
		StateDir: a.s.stateDir, ReadyTimeout: a.s.readyTimeout, OVSRunDir: a.s.ovsRunDir,
		Getenv: a.getenv, Log: a.log, Redactor: a.redactor, Fault: a.fault, Transport: a.transport,
	}
}

// service is the in-process service, made once.
func (a *app) service() *service.Service {
	if a.svc == nil {
		a.svc = service.New(a.serviceConfig())
	}
	return a.svc
}

// backend is the VM's agent when one runs (and --standalone is not given), else the
// in-process service.
func (a *app) backend(ctx context.Context) (api.Backend, error) {
	if !a.s.standalone {
		c, err := api.Dial(ctx, a.s.stateDir)
		if err == nil {
			if a.credsGiven {
				fmt.Fprintln(a.stderr, "ovn-docker: the agent of this VM acts with its own credentials; the ones given here are not used (--standalone uses them)")
			}
			a.log.Debug("asking the agent", "socket", c.Path())
			return c, nil
		}
		if !errors.Is(err, api.ErrNoAgent) {
			return nil, err
		}
	}
	return a.service(), nil
}

func (a *app) close() {
	if a.svc != nil {
		a.svc.Close()
	}
}

// newLogger logs to w at the level asked, as text (logfmt) or JSON lines (for journald
// or a log shipper), through the redactor.
func newLogger(w io.Writer, level, format string, red *osauth.Redactor) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l, ReplaceAttr: func(_ []string, at slog.Attr) slog.Attr {
		switch at.Value.Kind() {
		case slog.KindString:
			at.Value = slog.StringValue(red.String(at.Value.String()))
		case slog.KindAny:
			if err, ok := at.Value.Any().(error); ok {
				at.Value = slog.StringValue(red.String(err.Error()))
			}
		}
		return at
	}}
	var h slog.Handler
	switch format {
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: use text or json", format)
	}
	return slog.New(&redactingHandler{Handler: h, red: red}), nil
}

// redactingHandler also redacts the message itself.
type redactingHandler struct {
	slog.Handler
	red *osauth.Redactor
}

func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	r2 := slog.NewRecord(r.Time, r.Level, h.red.String(r.Message), r.PC)
	r.Attrs(func(at slog.Attr) bool { r2.AddAttrs(at); return true })
	return h.Handler.Handle(ctx, r2)
}

func (h *redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &redactingHandler{Handler: h.Handler.WithAttrs(as), red: h.red}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{Handler: h.Handler.WithGroup(name), red: h.red}
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
