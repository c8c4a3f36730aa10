package testutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// FaultyNeutron stands between one VM and Neutron in place of the VM's loopback relay:
// a proxy that can hold requests back or answer them with an error, as a slow or failing
// Neutron would. Neutron still gets every request it forwards, even one whose client
// gave up, like a real slow server.
type FaultyNeutron struct {
	mu        sync.Mutex
	delay     time.Duration
	failWith  int                      // status to answer instead of forwarding
	failCount int                      // how many more requests get it (-1: all)
	match     func(*http.Request) bool // which requests the failure applies to (nil: all)
	Requests  atomic.Int64
	// inFlight requests are held back or on their way to Neutron; idle is closed when
	// the last of them is done.
	inFlight int
	idle     chan struct{}
}

// Quiet waits until no request is held back or on its way to Neutron: Neutron has then
// answered everything it was asked, also what a client gave up on.
func (f *FaultyNeutron) Quiet(ctx context.Context) error {
	f.mu.Lock()
	if f.inFlight == 0 {
		f.mu.Unlock()
		return nil
	}
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("requests still on their way to Neutron: %w", ctx.Err())
	}
}

// SetDelay holds every request back for d before forwarding it.
func (f *FaultyNeutron) SetDelay(d time.Duration) { f.mu.Lock(); f.delay = d; f.mu.Unlock() }

// Fail answers the next n requests that match (nil: all; n < 0: every one) with status.
func (f *FaultyNeutron) Fail(status, n int, match func(*http.Request) bool) {
	f.mu.Lock()
	f.failWith, f.failCount, f.match = status, n, match
	f.mu.Unlock()
}

// Heal makes the proxy forward everything at once again.
func (f *FaultyNeutron) Heal() { f.SetDelay(0); f.Fail(0, 0, nil) }

func (f *FaultyNeutron) ServeHTTP(w http.ResponseWriter, r *http.Request, next http.Handler) {
	f.Requests.Add(1)
	f.mu.Lock()
	delay, status := f.delay, 0
	if f.failCount != 0 && (f.match == nil || f.match(r)) {
		status = f.failWith
		if f.failCount > 0 {
			f.failCount--
		}
	}
	f.mu.Unlock()
	if status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"NeutronError": {"type": "Injected", "message": "injected by the test: HTTP %d", "detail": ""}}`, status)
		return
	}
	f.mu.Lock()
	if f.inFlight++; f.inFlight == 1 {
		f.idle = make(chan struct{})
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if f.inFlight--; f.inFlight == 0 {
			close(f.idle)
		}
		f.mu.Unlock()
	}()
	if delay > 0 {
		time.Sleep(delay) // the slowness asked for: a rate, not a wait
	}
	// Neither the client's context nor its connection's close may cancel the forward:
	// a request without cancellation would make the proxy fall back to the writer's
	// CloseNotify, which the bare writer does not offer.
	next.ServeHTTP(struct{ http.ResponseWriter }{w}, r.WithContext(context.WithoutCancel(r.Context())))
}

// FaultyNeutron replaces the VM's relay to Neutron with a FaultyNeutron for the rest of
// the test, and puts the relay back when the test ends.
func (s *Stack) FaultyNeutron(t testing.TB, vm *VM) *FaultyNeutron {
	t.Helper()
	pidFile := filepath.Join(s.Dir, vm.Name, "relay-9696.pid")
	relaySock := filepath.Join(s.Dir, "relay", "9696.sock")
	stopRelay(t, pidFile)

	netns, err := ns.GetNS("/run/netns/" + vm.Name)
	if err != nil {
		t.Fatalf("open %s's netns: %v", vm.Name, err)
	}
	defer netns.Close()
	// The relay's processes let go of the port as they exit; until then it is in use.
	ctx, cancel := TimeoutContext(t)
	defer cancel()
	var ln net.Listener
	for {
		err = netns.Do(func(ns.NetNS) error {
			var lerr error
			ln, lerr = net.Listen("tcp", "127.0.0.1:9696")
			return lerr
		})
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err != nil {
		startRelay(t, vm.Name, pidFile, relaySock)
		t.Fatalf("listen on %s's 127.0.0.1:9696: %v", vm.Name, err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: "127.0.0.1:9696"})
	proxy.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", relaySock)
	}, DisableKeepAlives: true}
	f := &FaultyNeutron{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.ServeHTTP(w, r, proxy) })}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := TimeoutContext(t)
		defer cancel()
		_ = ln.Close() // the port is free for the relay at once
		<-served
		startRelay(t, vm.Name, pidFile, relaySock)
		// Requests still held back or in flight end before the test does.
		_ = srv.Shutdown(ctx)
		if ctx.Err() != nil {
			_ = srv.Close()
		}
	})
	return f
}

func stopRelay(t testing.TB, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the VM's relay: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("the VM's relay pid file: %v", err)
	}
	// The relay runs in a session of its own: its forks go with it.
	if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("stop the VM's relay: %v", err)
	}
}

func startRelay(t testing.TB, vm, pidFile, relaySock string) {
	cmd := exec.Command("nsenter", "--net=/run/netns/"+vm, "socat",
		"TCP-LISTEN:9696,bind=127.0.0.1,fork,reuseaddr", "UNIX-CONNECT:"+relaySock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Errorf("restart %s's relay to Neutron: %v", vm, err)
		return
	}
	_ = os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Wait until it answers, so the next test finds Neutron: poll for as long as the relay
	// runs and the run's time lasts.
	ctx, cancel := TimeoutContext(t)
	defer cancel()
	for {
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", vm, "curl", "-sf", "http://127.0.0.1:9696/").CombinedOutput()
		if err == nil && len(out) > 0 {
			return
		}
		select {
		case werr := <-exited:
			t.Errorf("%s's relay to Neutron did not come back: socat exited: %v", vm, werr)
			return
		case <-ctx.Done():
			t.Errorf("%s's relay to Neutron did not answer when the test's time was up: %v %s", vm, err, out)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
