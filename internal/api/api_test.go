package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/runargs"
	"github.com/ovn-docker/ovn-docker/internal/testutil/scratch"
	"github.com/ovn-docker/ovn-docker/internal/unixsock"
)

// recorder is a Backend that records what reached it and answers from its fields.
type recorder struct {
	calls []string
	last  any
	err   error
}

func (f *recorder) note(call string, req any) { f.calls = append(f.calls, call); f.last = req }

func (f *recorder) Run(_ context.Context, r RunRequest) (*RunResult, error) {
	f.note("run", r)
	return &RunResult{ID: "c1", Name: r.Options.Name, Interfaces: []Interface{{Network: r.Networks[0], VLAN: 7}}}, f.err
}
func (f *recorder) Remove(_ context.Context, r RemoveRequest) error { f.note("rm", r); return f.err }
func (f *recorder) Interfaces(context.Context) ([]Interface, error) {
	f.note("ps", nil)
	return []Interface{{Container: "c1", IPs: []string{"10.0.0.5/24"}}}, f.err
}
func (f *recorder) Networks(context.Context) ([]Network, error) {
	f.note("networks", nil)
	return []Network{{Name: "LS1", Containers: 2}}, f.err
}
func (f *recorder) CreateNetwork(_ context.Context, r CreateNetworkRequest) (*CreateNetworkResult, error) {
	f.note("create", r)
	return &CreateNetworkResult{Network: Network{Name: r.Name}, Note: "chosen"}, f.err
}
func (f *recorder) DeleteNetwork(_ context.Context, name string) (*Network, error) {
	f.note("delete", name)
	return &Network{Name: name}, f.err
}
func (f *recorder) Pools(context.Context) ([]Pool, error) {
	f.note("pools", nil)
	return []Pool{{Network: "LS1", Ready: 3}}, f.err
}
func (f *recorder) GC(_ context.Context, r GCRequest) (*GCResult, error) {
	f.note("gc", r)
	return &GCResult{Summary: "ok"}, f.err
}
func (f *recorder) Attach(_ context.Context, r AttachRequest) (*Attachment, error) {
	f.note("attach", r)
	return &Attachment{Interface: Interface{Interface: r.IfName}, DNS: []string{"10.0.0.2"}}, f.err
}
func (f *recorder) Detach(_ context.Context, r DetachRequest) error {
	f.note("detach", r)
	return f.err
}
func (f *recorder) Check(_ context.Context, r CheckRequest) error {
	f.note("check", r)
	return f.err
}
func (f *recorder) Collect(_ context.Context, r CollectRequest) (*CollectResult, error) {
	f.note("collect", r)
	return &CollectResult{Released: r.Keep[:1]}, f.err
}
func (f *recorder) NetworkReady(_ context.Context, network string) error {
	f.note("network ready", network)
	return f.err
}
func (f *recorder) Status(context.Context) (*Status, error) {
	f.note("status", nil)
	return &Status{Agent: AgentInfo{Running: true, PID: 42}}, f.err
}

var _ Backend = (*recorder)(nil)

// serve runs a Server for b on a socket in a scratch dir and returns the state dir.
func serve(t *testing.T, b Backend, ready func() error) string {
	t.Helper()
	dir := scratch.Dir(t)
	l, err := unixsock.Listen(filepath.Join(dir, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(b, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Ready = ready
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- unixsock.Serve(ctx, l, s.Handler(), time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return dir
}

func TestEveryCallReachesTheBackendAndComesBack(t *testing.T) {
	f := &recorder{}
	dir := serve(t, f, nil)
	ctx := context.Background()
	c, err := Dial(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.Run(ctx, RunRequest{Networks: []string{"LS1"}, Options: &runargs.Options{Name: "web", Detach: true}})
	if err != nil || run.ID != "c1" || run.Name != "web" || run.Interfaces[0].VLAN != 7 {
		t.Fatalf("run: %+v, %v", run, err)
	}
	if got := f.last.(RunRequest); !got.Options.Detach || got.Networks[0] != "LS1" {
		t.Fatalf("run request reached the backend as %+v", got)
	}
	if err := c.Remove(ctx, RemoveRequest{Container: "web/../x", Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := f.last.(RemoveRequest); got != (RemoveRequest{Container: "web/../x", Force: true}) {
		t.Fatalf("rm reached the backend as %+v", got)
	}
	if ps, err := c.Interfaces(ctx); err != nil || len(ps) != 1 || ps[0].IPs[0] != "10.0.0.5/24" {
		t.Fatalf("ps: %+v, %v", ps, err)
	}
	if ns, err := c.Networks(ctx); err != nil || ns[0].Containers != 2 {
		t.Fatalf("networks: %+v, %v", ns, err)
	}
	if r, err := c.CreateNetwork(ctx, CreateNetworkRequest{Name: "LS2", Subnet: "10.1.0.0/24"}); err != nil || r.Network.Name != "LS2" || r.Note != "chosen" {
		t.Fatalf("create: %+v, %v", r, err)
	}
	if n, err := c.DeleteNetwork(ctx, "LS 2"); err != nil || n.Name != "LS 2" {
		t.Fatalf("delete: %+v, %v", n, err)
	}
	if p, err := c.Pools(ctx); err != nil || p[0].Ready != 3 {
		t.Fatalf("pools: %+v, %v", p, err)
	}
	if g, err := c.GC(ctx, GCRequest{Grace: 3 * time.Second, DrainPools: true}); err != nil || g.Summary != "ok" {
		t.Fatalf("gc: %+v, %v", g, err)
	}
	if got := f.last.(GCRequest); got.Grace != 3*time.Second || !got.DrainPools {
		t.Fatalf("gc reached the backend as %+v", got)
	}
	a, err := c.Attach(ctx, AttachRequest{Owner: "ctr", Network: "LS1", NetNS: "/proc/1/ns/net", IfName: "net1"})
	if err != nil || a.Interface.Interface != "net1" || a.DNS[0] != "10.0.0.2" {
		t.Fatalf("attach: %+v, %v", a, err)
	}
	if err := c.Detach(ctx, DetachRequest{Owner: "ctr", IfName: "net1"}); err != nil {
		t.Fatal(err)
	}
	check := CheckRequest{Owner: "cni:net:ctr", IfName: "eth0", MAC: "02:00:00:00:00:01", IPs: []string{"10.0.0.5/24"}}
	if err := c.Check(ctx, check); err != nil {
		t.Fatal(err)
	}
	if got := f.last.(CheckRequest); !reflect.DeepEqual(got, check) {
		t.Fatalf("check reached the backend as %+v", got)
	}
	keep := []AttachmentKey{{Owner: "cni:net:a", IfName: "eth0"}, {Owner: "cni:net:b", IfName: "net1"}}
	if r, err := c.Collect(ctx, CollectRequest{OwnerPrefix: "cni:net:", Keep: keep}); err != nil || !reflect.DeepEqual(r.Released, keep[:1]) {
		t.Fatalf("collect: %+v, %v", r, err)
	}
	if err := c.NetworkReady(ctx, "LS 1/x"); err != nil || f.last.(string) != "LS 1/x" {
		t.Fatalf("network ready: %v, reached the backend as %v", err, f.last)
	}
	if s, err := c.Status(ctx); err != nil || !s.Agent.Running || s.Agent.PID != 42 {
		t.Fatalf("status: %+v, %v", s, err)
	}
	want := []string{"run", "rm", "ps", "networks", "create", "delete", "pools", "gc", "attach", "detach", "check", "collect", "network ready", "status"}
	if !reflect.DeepEqual(f.calls, want) {
		t.Fatalf("calls %v, want %v", f.calls, want)
	}
}

func TestErrorsKeepTheirKindAndMessage(t *testing.T) {
	f := &recorder{}
	dir := serve(t, f, nil)
	ctx := context.Background()
	c, err := Dial(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		err  error
		kind Kind
	}{
		{NotFound(errors.New("no such container: web")), KindNotFound},
		{Invalid(errors.New("run needs at least one --network")), KindInvalid},
		{Conflict(errors.New("network LS1 is used by 2 container interface(s)")), KindConflict},
		{Unavailable(errors.New("neutron does not answer")), KindUnavailable},
		{Drift(errors.New("eth0 of cni:net:a: has MTU 1280, not 1442")), KindDrift},
		{errors.New("something broke"), KindInternal},
	} {
		f.err = tc.err
		err := c.Remove(ctx, RemoveRequest{Container: "web"})
		if KindOf(err) != tc.kind || err.Error() != tc.err.Error() {
			t.Errorf("%v came back as %q (kind %s), want kind %s", tc.err, err, KindOf(err), tc.kind)
		}
	}
}

func TestBadCallsAreRefusedClearly(t *testing.T) {
	dir := serve(t, &recorder{}, nil)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(dir, SocketName))
	}}}
	for _, tc := range []struct {
		method, path, body string
		status             int
		says               string
	}{
		{"GET", "/v2/interfaces", "", 404, "this agent speaks API v1"},
		{"POST", "/v1/networks", `{"name": 1}`, 400, "request body"},
		{"POST", "/v1/networks", `{"nmae": "LS1"}`, 400, "unknown field"},
		{"PUT", "/v1/interfaces", "", 404, "no such call: PUT /v1/interfaces"},
	} {
		req, _ := http.NewRequest(tc.method, "http://agent"+tc.path, strings.NewReader(tc.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.says) {
			t.Errorf("%s %s: %d %s, want %d saying %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.says)
		}
	}
}

func TestDialWithoutAgent(t *testing.T) {
	dir := scratch.Dir(t)
	if _, err := Dial(context.Background(), dir); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("no socket: %v, want ErrNoAgent", err)
	}
	// A socket left by an agent that died.
	l, err := unixsock.Listen(filepath.Join(dir, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := Dial(context.Background(), dir); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("stale socket: %v, want ErrNoAgent", err)
	}
}

func TestReadiness(t *testing.T) {
	var ready atomic.Bool
	dir := serve(t, &recorder{}, func() error {
		if !ready.Load() {
			return errors.New("still reconciling with Docker")
		}
		return nil
	})
	c, err := Dial(context.Background(), dir)
	if err != nil {
		t.Fatalf("a live agent that is not ready yet still answers its health: %v", err)
	}
	if err := c.Ready(context.Background()); KindOf(err) != KindUnavailable || !strings.Contains(err.Error(), "reconciling") {
		t.Fatalf("not ready: %v", err)
	}
	ready.Store(true)
	if err := c.Ready(context.Background()); err != nil {
		t.Fatalf("ready: %v", err)
	}
}
