package unixsock

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/testutil/scratch"
)

func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}

func TestListenMakesARootOnlySocketAndRefusesALiveOne(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plugins")
	l, err := Listen(filepath.Join(dir, "ovn.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Lstat(filepath.Join(dir, "ovn.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket 0600", fi.Mode())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("socket folder holds %d entries, want the socket only", len(entries))
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = http.Serve(l, http.NotFoundHandler()) }()
	defer func() { l.Close(); <-served }()
	if _, err := Listen(filepath.Join(dir, "ovn.sock")); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
	if _, err := Listen(filepath.Join(dir, ".hidden")); err == nil {
		t.Fatal("a hidden name was accepted")
	}
}

func TestListenReplacesAStaleSocketButNothingElse(t *testing.T) {
	dir := t.TempDir()
	l, err := Listen(filepath.Join(dir, "ovn.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // like a killed daemon: the file stays, nobody answers
	if _, err := os.Lstat(l.Path()); err != nil {
		t.Fatalf("the stale socket should still be there: %v", err)
	}
	l2, err := Listen(filepath.Join(dir, "ovn.sock"))
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
	_ = l2.Remove()
	if err := os.WriteFile(filepath.Join(dir, "ovn.sock"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(filepath.Join(dir, "ovn.sock")); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("a regular file in the way: %v", err)
	}
}

// TestServeFinishesCallsInFlight: on shutdown a call in flight completes, new
// connections are refused and the socket goes away.
func TestServeFinishesCallsInFlight(t *testing.T) {
	dir := scratch.Dir(t) // Serve removes its socket from it
	l, err := Listen(filepath.Join(dir, "ovn.sock"))
	if err != nil {
		t.Fatal(err)
	}
	// The call answers only once the shutdown has begun: the listener is closed, so
	// that a new connection is refused (the socket file stays until Serve removes it).
	entered := make(chan struct{})
	refused := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		refused <- waitRefused(l.Path())
		_, _ = io.WriteString(w, `{}`)
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	// The drain is no bound here: the call must finish because Serve waits for it.
	go func() { served <- Serve(ctx, l, h, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	got := make(chan error, 1)
	go func() {
		resp, err := unixClient(l.Path()).Post("http://plugin/NetworkDriver.Join", "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = &net.OpError{Op: resp.Status}
			}
		}
		got <- err
	}()
	<-entered
	cancel()
	if err := <-got; err != nil {
		t.Fatalf("the call in flight was cut: %v", err)
	}
	if err := <-refused; err != nil {
		t.Fatalf("a new connection during the shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(l.Path()); !os.IsNotExist(err) {
		t.Fatalf("socket left after shutdown: %v", err)
	}
}

// waitRefused returns nil once a connection to the socket at path is refused (its
// listener closed), or the error a dial fails with otherwise.
func waitRefused(path string) error {
	for {
		c, err := net.Dial("unix", path)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		if err != nil {
			return err
		}
		c.Close()
		time.Sleep(time.Millisecond)
	}
}
