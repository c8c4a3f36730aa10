// Package metrics holds ovn-docker's Prometheus metrics and serves them on a unix socket
// or a loopback address only: they name networks and ports of the tenant.
package metrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the daemon's metrics, on a registry of their own.
type Metrics struct {
	Registry *prometheus.Registry

	AttachPhase  *prometheus.HistogramVec // seconds per engine phase
	Attach       *prometheus.HistogramVec // seconds per whole attach, by path (cold, warm)
	APIRequests  *prometheus.CounterVec   // OpenStack requests by service, method, code
	APILatency   *prometheus.HistogramVec // seconds per OpenStack request, by service and method
	APICalls     *prometheus.HistogramVec // seconds per OpenStack request, by service and call (see Call)
	APIInFlight  *prometheus.GaugeVec     // OpenStack requests in flight, by service
	PoolDepth    *prometheus.GaugeVec     // ready interfaces per pool
	PoolHits     *prometheus.CounterVec   // attaches served warm, per pool
	PoolMisses   *prometheus.CounterVec   // attaches that found the pool empty, per pool
	PoolShrinks  *prometheus.CounterVec   // pool shrinks, per pool and reason
	VLANsInUse   prometheus.Gauge
	AttachErrors *prometheus.CounterVec // failed attaches, by path
}

// New makes the metrics (and Go runtime metrics) on a fresh registry.
func New() *Metrics {
	buckets := []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		AttachPhase: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ovn_docker_attach_phase_seconds",
			Help: "Time of each phase of an attach (trunk, reserve, port, subport, plumb, ready, place).", Buckets: buckets}, []string{"phase"}),
		Attach: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ovn_docker_attach_seconds",
			Help: "Time of a whole attach, by path: cold (Neutron on the way) or warm (from a pool).", Buckets: buckets}, []string{"path"}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ovn_docker_openstack_requests_total",
			Help: "OpenStack API requests, by service, method and HTTP status."}, []string{"service", "method", "code"}),
		APILatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ovn_docker_openstack_request_seconds",
			Help: "Time of OpenStack API requests, by service and method.", Buckets: buckets}, []string{"service", "method"}),
		APICalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ovn_docker_openstack_call_seconds",
			Help:    "Time of OpenStack API requests, by service and call (method and path, IDs left out: \"POST ports\", \"PUT trunks/{id}/add_subports\").",
			Buckets: buckets}, []string{"service", "call"}),
		APIInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ovn_docker_openstack_requests_in_flight",
			Help: "OpenStack API requests sent and not yet answered, by service."}, []string{"service"}),
		PoolDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ovn_docker_pool_ready",
			Help: "Interfaces ready in a pool (port, subport, veth and access port made, data path proven)."}, []string{"pool"}),
		PoolHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ovn_docker_pool_hits_total",
			Help: "Attaches served from a pool."}, []string{"pool"}),
		PoolMisses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ovn_docker_pool_misses_total",
			Help: "Attaches that found their pool empty and went the cold path."}, []string{"pool"}),
		PoolShrinks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ovn_docker_pool_shrinks_total",
			Help: "Times a pool lowered its target because Neutron ran out of addresses or quota."}, []string{"pool", "reason"}),
		VLANsInUse: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ovn_docker_vlans_in_use",
			Help: "VLANs of the VM held by container interfaces (pools included)."}),
		AttachErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ovn_docker_attach_errors_total",
			Help: "Attaches that failed, by path."}, []string{"path"}),
	}
	m.Registry.MustRegister(m.AttachPhase, m.Attach, m.APIRequests, m.APILatency, m.APICalls, m.APIInFlight, m.PoolDepth, m.PoolHits,
		m.PoolMisses, m.PoolShrinks, m.VLANsInUse, m.AttachErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Observe records an engine phase (engine.Config.Observe).
func (m *Metrics) Observe(phase string, d time.Duration) {
	m.AttachPhase.WithLabelValues(phase).Observe(d.Seconds())
}

// Transport counts and times OpenStack requests (osauth.Options.Transport). A request's
// time is until its answer's headers: what the service took to answer.
func (m *Metrics) Transport(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		service := Service(r.URL)
		inFlight := m.APIInFlight.WithLabelValues(service)
		inFlight.Inc()
		t0 := time.Now()
		resp, err := next.RoundTrip(r)
		d := time.Since(t0).Seconds()
		inFlight.Dec()
		code := "error"
		if err == nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		m.APIRequests.WithLabelValues(service, r.Method, code).Inc()
		m.APILatency.WithLabelValues(service, r.Method).Observe(d)
		m.APICalls.WithLabelValues(service, Call(r.Method, r.URL)).Observe(d)
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Service names the OpenStack service of a request URL by its API's path: "neutron"
// (/v2.0/), "keystone" (/v3), else "other".
func Service(u *url.URL) string {
	switch {
	case strings.Contains(u.Path, "/v2.0/") || strings.HasSuffix(u.Path, "/v2.0"):
		return "neutron"
	case strings.Contains(u.Path, "/v3/") || strings.HasSuffix(u.Path, "/v3"):
		return "keystone"
	}
	return "other"
}

// Call names an OpenStack request by its method and path with the IDs left out, so
// that a call's kind is a label of bounded variety: Neutron's paths alternate resource
// and ID ("PUT trunks/{id}/add_subports", "DELETE ports/{id}", "PUT ports/{id}/tags/{id}");
// Keystone's and others' keep their first words only ("POST auth/tokens").
func Call(method string, u *url.URL) string {
	path := u.Path
	switch Service(u) {
	case "neutron":
		_, rest, _ := strings.Cut(path, "/v2.0")
		segs := strings.Split(strings.Trim(rest, "/"), "/")
		if len(segs) > 4 {
			segs = append(segs[:4], "...")
		}
		for i := range segs {
			if i%2 == 1 && segs[i] != "..." {
				segs[i] = "{id}"
			}
		}
		segs[0] = strings.TrimSuffix(segs[0], ".json")
		return method + " " + strings.Join(segs, "/")
	case "keystone":
		_, rest, _ := strings.Cut(path, "/v3")
		segs := strings.Split(strings.Trim(rest, "/"), "/")
		if segs[0] == "auth" && len(segs) > 1 {
			return method + " auth/" + segs[1]
		}
		return method + " " + segs[0]
	}
	return method + " other"
}

// Listen opens where metrics are served: "unix:/path" (made 0600) or a loopback
// "host:port" with TLS (cert and key files). Other addresses are refused: the metrics
// describe the tenant's networks, and no TCP listener goes without TLS.
func Listen(addr, certFile, keyFile string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		_ = os.Remove(path)
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("metrics socket %s: %w", path, err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			l.Close()
			return nil, err
		}
		return l, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %q: use unix:/path or 127.0.0.1:PORT", addr)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("metrics address %q is not loopback: use unix:/path or 127.0.0.1:PORT", addr)
	}
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("metrics on TCP (%s) need TLS: give --metrics-tls-cert and --metrics-tls-key, or use unix:/path", addr)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("metrics TLS: %w", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// Serve serves /metrics on l until ctx ends.
func (m *Metrics) Serve(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
