package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestListenRefusesWhatIsNotPrivate(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:9100", "10.0.0.1:9100", ":9100", "example.com:80", "nonsense"} {
		if l, err := Listen(addr, "", ""); err == nil {
			l.Close()
			t.Errorf("Listen(%q) accepted", addr)
		}
	}
	if l, err := Listen("127.0.0.1:0", "", ""); err == nil || !strings.Contains(err.Error(), "TLS") {
		if l != nil {
			l.Close()
		}
		t.Errorf("plain TCP on loopback: %v, want a refusal naming TLS", err)
	}
}

func TestServeOnAUnixSocket(t *testing.T) {
	m := New()
	m.Observe("port", 30*time.Millisecond)
	m.PoolDepth.WithLabelValues("pool:x:").Set(3)
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	l, err := Listen("unix:"+sock, "", "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", fi.Mode().Perm(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, l) }()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	// Serve stops when the test ends, however it ends, and the test waits for it.
	t.Cleanup(func() {
		c.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	resp, err := c.Get("http://metrics/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`ovn_docker_attach_phase_seconds_count{phase="port"} 1`, `ovn_docker_pool_ready{pool="pool:x:"} 3`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestService(t *testing.T) {
	for u, want := range map[string]string{
		"http://127.0.0.1:9696/v2.0/ports":    "neutron",
		"http://keystone:5000/v3/auth/tokens": "keystone",
		"https://cloud/network/v2.0/trunks/x": "neutron",
		"http://elsewhere/":                   "other",
	} {
		pu, _ := url.Parse(u)
		if got := Service(pu); got != want {
			t.Errorf("Service(%s) = %s, want %s", u, got, want)
		}
	}
}

func TestCall(t *testing.T) {
	for _, c := range []struct{ method, url, want string }{
		{"POST", "http://127.0.0.1:9696/v2.0/ports", "POST ports"},
		{"DELETE", "http://127.0.0.1:9696/v2.0/ports/7d0c1e7e-2b0e-4c8e-9a55-0c1f1c1d1e1f", "DELETE ports/{id}"},
		{"PUT", "http://127.0.0.1:9696/v2.0/trunks/abc/add_subports", "PUT trunks/{id}/add_subports"},
		{"PUT", "http://127.0.0.1:9696/v2.0/trunks/abc/remove_subports", "PUT trunks/{id}/remove_subports"},
		{"PUT", "https://cloud/network/v2.0/ports/abc/tags/ovn-docker-vm=x", "PUT ports/{id}/tags/{id}"},
		{"GET", "http://127.0.0.1:9696/v2.0/networks?name=LS1", "GET networks"},
		{"GET", "http://127.0.0.1:9696/v2.0/ports.json", "GET ports"},
		{"GET", "http://127.0.0.1:9696/v2.0/a/b/c/d/e/f", "GET a/{id}/c/{id}/..."},
		{"POST", "http://keystone:5000/v3/auth/tokens", "POST auth/tokens"},
		{"GET", "http://keystone:5000/v3/users/u1/projects", "GET users"},
		{"GET", "http://elsewhere/x", "GET other"},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := Call(c.method, u); got != c.want {
			t.Errorf("Call(%s %s) = %q, want %q", c.method, c.url, got, c.want)
		}
	}
}

func TestParseText(t *testing.T) {
	in := `# HELP x a help line
# TYPE x counter
x 3
y{service="neutron",call="PUT trunks/{id}/add_subports"} 0.25
y{service="neutron",call="POST ports"} 1.5e-01 1700000000000
y{ service = "keystone" , call="a \"quoted\" \\ one\n" ,} 2
z_bucket{le="+Inf"} +Inf
`
	ss, err := ParseText(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 5 {
		t.Fatalf("%d samples, want 5: %+v", len(ss), ss)
	}
	if got := ss.Sum("x", nil); got != 3 {
		t.Errorf("x = %v", got)
	}
	if got := ss.Sum("y", map[string]string{"service": "neutron"}); got != 0.4 {
		t.Errorf("neutron's y = %v, want 0.4", got)
	}
	if got := ss.Sum("y", map[string]string{"call": "a \"quoted\" \\ one\n"}); got != 2 {
		t.Errorf("escaped label: y = %v, want 2 (%+v)", got, ss[3].Labels)
	}
	if !ss.Has("z_bucket") || ss.Has("w") {
		t.Error("Has")
	}
	for _, bad := range []string{"x", `x{a="b" 1`, `x{a=b} 1`, "x one", "x 1 2 3"} {
		if _, err := ParseText(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseText(%q) accepted", bad)
		}
	}
}

// TestTransportInFlightAndCalls: a request is in flight until answered, then counted
// under its call with its time.
func TestTransportInFlightAndCalls(t *testing.T) {
	m := New()
	release := make(chan struct{})
	started := make(chan struct{})
	next := roundTripper(func(r *http.Request) (*http.Response, error) {
		close(started)
		<-release
		return &http.Response{StatusCode: 201, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})
	rt := m.Transport(next)
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:9696/v2.0/ports", nil)
	done := make(chan error, 1)
	go func() {
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-started
	scrape := func() Samples {
		t.Helper()
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		ss, err := ParseText(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		return ss
	}
	neutron := map[string]string{"service": "neutron"}
	if got := scrape().Sum("ovn_docker_openstack_requests_in_flight", neutron); got != 1 {
		t.Errorf("in flight while waiting for the answer: %v, want 1", got)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ss := scrape()
	if got := ss.Sum("ovn_docker_openstack_requests_in_flight", neutron); got != 0 {
		t.Errorf("in flight once answered: %v, want 0", got)
	}
	call := map[string]string{"service": "neutron", "call": "POST ports"}
	if got := ss.Sum("ovn_docker_openstack_call_seconds_count", call); got != 1 {
		t.Errorf("calls counted: %v, want 1", got)
	}
	if !ss.Has("ovn_docker_openstack_call_seconds_sum") {
		t.Error("no time summed")
	}
}
