package ovs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
)

func TestCheckEndpoint(t *testing.T) {
	for _, ep := range []string{"unix:/run/openvswitch/db.sock", "tcp:127.0.0.1:6640", "tcp:[::1]:6640", "tcp:ovsdb.example:6640"} {
		if err := checkEndpoint(ep); err != nil {
			t.Errorf("checkEndpoint(%q) = %v, want nil", ep, err)
		}
	}
	for _, ep := range []string{"", "/run/db.sock", "unix:", "unix:db.sock", "tcp:", "tcp:127.0.0.1", "ssl:127.0.0.1:6640", "punix:/run/db.sock"} {
		if err := checkEndpoint(ep); err == nil {
			t.Errorf("checkEndpoint(%q) = nil, want an error", ep)
		}
	}
}

func TestDialFailsWithoutServer(t *testing.T) {
	ctx := t.Context() // no deadline: both fail at once, whatever the machine's speed
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := Dial(ctx, "unix:"+sock)
	if err == nil || !strings.Contains(err.Error(), sock) {
		t.Fatalf("Dial to a missing socket: err = %v, want one naming %s", err, sock)
	}

	// A listener that hangs up is not an ovsdb-server either.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	accepting := make(chan struct{})
	defer func() { l.Close(); <-accepting }()
	go func() {
		defer close(accepting)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	if _, err := Dial(ctx, "unix:"+sock); err == nil {
		t.Fatal("Dial to a listener that hangs up succeeded")
	}
}

func TestDialRejectsBadEndpoint(t *testing.T) {
	_, err := Dial(context.Background(), "unix:relative.sock")
	if err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Fatalf("Dial(unix:relative.sock): err = %v, want an endpoint error", err)
	}
}

func TestIsConnLoss(t *testing.T) {
	loss := []error{
		errConnLost,
		client.ErrNotConnected,
		io.EOF,
		io.ErrUnexpectedEOF,
		net.ErrClosed,
		&net.OpError{Op: "write", Err: syscall.EPIPE},
		fmt.Errorf("add port x: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}),
		fmt.Errorf("wait: %w", errConnLost),
	}
	for _, err := range loss {
		if !isConnLoss(err) {
			t.Errorf("isConnLoss(%v) = false, want true", err)
		}
	}
	notLoss := []error{
		context.DeadlineExceeded,
		context.Canceled,
		errors.New("constraint violation"),
		errClosed,
		fmt.Errorf("bridge br9 not found"),
	}
	for _, err := range notLoss {
		if isConnLoss(err) {
			t.Errorf("isConnLoss(%v) = true, want false", err)
		}
	}
}

// A connection turned away because the server's accept queue is full (EAGAIN) is made
// again until it is accepted; any other error is returned at once.
func TestWhenAccepted(t *testing.T) {
	busy := fmt.Errorf("failed to open connection: %w", &net.OpError{Op: "dial", Net: "unix", Err: &net.OpError{Err: syscall.EAGAIN}})
	calls := 0
	got, err := whenAccepted(context.Background(), func() (int, error) {
		if calls++; calls < 4 {
			return 0, busy
		}
		return 7, nil
	})
	if err != nil || got != 7 || calls != 4 {
		t.Fatalf("after three busy answers: %d, %v after %d calls; want 7, nil after 4", got, err, calls)
	}

	calls = 0
	refused := fmt.Errorf("failed to open connection: %w", syscall.ECONNREFUSED)
	if _, err := whenAccepted(context.Background(), func() (int, error) { calls++; return 0, refused }); !errors.Is(err, syscall.ECONNREFUSED) || calls != 1 {
		t.Fatalf("refused: %v after %d calls; want the error after 1", err, calls)
	}

	// Always busy: the context ends while it waits its turn (here: during the third
	// attempt), and it returns the last error instead of trying on. A few attempts more
	// may come if a pause ends together with the context; fifty cannot, and end it
	// with another error.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled time.Time
	calls = 0
	_, err = whenAccepted(ctx, func() (int, error) {
		switch calls++; {
		case calls == 3:
			cancel()
			cancelled = time.Now()
		case calls > 3+50:
			return 0, errors.New("still trying long after the context ended")
		}
		return 0, busy
	})
	if !errors.Is(err, syscall.EAGAIN) || calls < 3 {
		t.Fatalf("always busy: %v after %d calls, want EAGAIN once the context ends", err, calls)
	}
	t.Logf("always busy: returned %s after the context ended, after %d calls", time.Since(cancelled), calls)
}
