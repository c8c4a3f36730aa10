package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
