package dockerplugin

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}

func TestListenMakesARootOnlySocketAndRefusesALiveOne(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plugins")
	l, err := Listen(dir, "ovn")
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
		t.Fatalf("plugin folder holds %d entries, want the socket only", len(entries))
	}
	go func() { _ = http.Serve(l, http.NotFoundHandler()) }()
	if _, err := Listen(dir, "ovn"); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
	if _, err := Listen(dir, "../x"); err == nil {
		t.Fatal("a name with a path was accepted")
	}
}

func TestListenReplacesAStaleSocketButNothingElse(t *testing.T) {
	dir := t.TempDir()
	l, err := Listen(dir, "ovn")
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // like a killed daemon: the file stays, nobody answers
	if _, err := os.Lstat(l.Path()); err != nil {
		t.Fatalf("the stale socket should still be there: %v", err)
	}
	l2, err := Listen(dir, "ovn")
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
	_ = l2.Remove()
	if err := os.WriteFile(filepath.Join(dir, "ovn.sock"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(dir, "ovn"); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("a regular file in the way: %v", err)
	}
}

// TestServeFinishesCallsInFlight: on shutdown a call in flight completes, new
// connections are refused and the socket goes away.
func TestServeFinishesCallsInFlight(t *testing.T) {
	dir := t.TempDir()
	l, err := Listen(dir, "ovn")
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, `{}`)
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, l, h, 5*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	got := make(chan error, 1)
	go func() {
		resp, err := unixClient(l.Path()).Post("http://plugin/NetworkDriver.Join", contentType, strings.NewReader("{}"))
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
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(l.Path()); !os.IsNotExist(err) {
		t.Fatalf("socket left after shutdown: %v", err)
	}
}

func TestLockDaemonIsExclusive(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockDaemon(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDaemon(dir); err == nil || !strings.Contains(err.Error(), "another ovn-docker daemon") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	again, err := LockDaemon(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}
