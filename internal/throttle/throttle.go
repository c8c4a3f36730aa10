// Package throttle keeps a VM's ovn-docker processes from swamping OpenStack: a limited
// number of slots, shared across processes through file locks, bounds the requests in
// flight at once, so that a hundred simultaneous runs queue in the VM instead of timing
// out in Neutron's queue. It also retries requests that failed for reasons that pass:
// connections refused or reset, 502/503/504, and Neutron's 409s that report a
// concurrent update rather than a real conflict, with backoff, within the request's
// deadline.
package throttle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/flock"
)

// Slots are n file-locked slots in dir.
type Slots struct {
	dir string
	n   int
}

// NewSlots makes (if needed) the slot files in dir, readable by root only.
func NewSlots(dir string, n int) (*Slots, error) {
	if n < 1 {
		return nil, fmt.Errorf("throttle: %d slots", n)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	return &Slots{dir: dir, n: n}, nil
}

// Acquire takes a free slot, waiting until one frees or ctx ends. The returned func
// gives it back.
func (s *Slots) Acquire(ctx context.Context) (func(), error) {
	first := rand.IntN(s.n) // spread the processes over the slots
	for i := 0; i < s.n; i++ {
		f, err := s.open((first + i) % s.n)
		if err != nil {
			return nil, err
		}
		ok, err := flock.TryLock(f, unix.LOCK_EX)
		if ok {
			return func() { flock.Unlock(f) }, nil
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("throttle: %w", err)
		}
	}
	// Every slot is taken: wait on one.
	f, err := s.open(first)
	if err != nil {
		return nil, err
	}
	if err := flock.Lock(ctx, f, unix.LOCK_EX); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("wait for a free OpenStack request slot: %w", ctx.Err())
		}
		return nil, fmt.Errorf("throttle: %w", err)
	}
	return func() { flock.Unlock(f) }, nil
}

func (s *Slots) open(i int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, fmt.Sprintf("slot-%d", i)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	return f, nil
}

// Transport wraps next with the slots (nil: no limit) and retries.
type Transport struct {
	Next     http.RoundTripper
	Slots    *Slots
	Attempts int           // tries of a retryable request in all; 0 means 6
	Backoff  time.Duration // first wait between tries; 0 means 200 ms
	// after, for tests, stands for time.After in the wait between tries (nil: time.After),
	// so that they decide when a wait ends instead of racing it with a clock.
	after func(time.Duration) <-chan time.Time
}

func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	attempts, backoff := t.Attempts, t.Backoff
	if attempts <= 0 {
		attempts = 6
	}
	if backoff <= 0 {
		backoff = 200 * time.Millisecond
	}
	// The body must be replayable to be retried.
	var body []byte
	if r.Body != nil && r.GetBody == nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	for try := 1; ; try++ {
		req := r
		if body != nil {
			req = r.Clone(r.Context())
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
		} else if r.GetBody != nil && try > 1 {
			b, err := r.GetBody()
			if err != nil {
				return nil, err
			}
			req = r.Clone(r.Context())
			req.Body = b
		}
		resp, err := t.once(req)
		if try >= attempts || r.Context().Err() != nil || !retryable(r.Method, resp, err) {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		d := backoff << (try - 1)
		d += time.Duration(rand.Int64N(int64(d)/2 + 1)) // jitter: the processes do not retry in step
		after := time.After
		if t.after != nil {
			after = t.after
		}
		select {
		case <-r.Context().Done():
			if err != nil {
				return nil, err
			}
			return nil, r.Context().Err()
		case <-after(d):
		}
	}
}

func (t *Transport) once(r *http.Request) (*http.Response, error) {
	if t.Slots != nil {
		release, err := t.Slots.Acquire(r.Context())
		if err != nil {
			return nil, err
		}
		defer release()
	}
	resp, err := t.Next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusConflict {
		return resp, err
	}
	// Keep a 409's body readable for retryable() and for the caller.
	b, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr != nil {
		return nil, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// retryable says whether a failed request may be sent again: its effect either did not
// happen, or happening twice is harmless (GET, PUT, DELETE are idempotent in Neutron's
// API; a POST is retried only when it never reached the server).
func retryable(method string, resp *http.Response, err error) bool {
	if err != nil {
		if notSent(err) {
			return true
		}
		// The caller's context is still alive (RoundTrip checked): a deadline here is
		// the attempt's own, a slow server.
		return method != http.MethodPost && (isTransient(err) || errors.Is(err, context.DeadlineExceeded))
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case http.StatusInternalServerError:
		return method != http.MethodPost
	case http.StatusConflict:
		return concurrentUpdate(resp)
	}
	return false
}

// notSent reports a failure to connect: the server never saw the request.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED)
}

func isTransient(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE)
}

// concurrentUpdate tells Neutron's 409s that mean "someone else changed this at the same
// moment" (worth retrying) from real conflicts (a VLAN in use, a port in use, quota).
func concurrentUpdate(resp *http.Response) bool {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return false
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var e struct {
		NeutronError struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"NeutronError"`
	}
	if json.Unmarshal(b, &e) != nil {
		return false
	}
	switch e.NeutronError.Type {
	case "TrunkInErrorState", "TrunkNotInState", "StaleDataError", "RetryRequest", "DBDeadlock", "ConcurrentModification":
		return true
	}
	return false
}
