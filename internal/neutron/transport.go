package neutron

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Slots bound the OpenStack requests in flight: Acquire waits for a free slot (or ctx's
// end) and returns the func that gives it back. *throttle.Slots, shared by a VM's
// processes through file locks, is one.
type Slots interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// Transport is the HTTP transport of the OpenStack clients (Keystone's calls go through
// it too): each attempt takes one of the Slots (nil: no limit), and a request that
// failed for a reason that passes is sent again, with backoff, within its context's
// deadline: a connection refused or reset, a 502/503/504, a 500 to a request that is
// safe to repeat, and Neutron's 409s that report a concurrent update rather than a real
// conflict (ErrConcurrentUpdate).
type Transport struct {
	Next     http.RoundTripper
	Slots    Slots
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

// concurrentUpdate tells a response whose body is an ErrConcurrentUpdate refusal of
// Neutron's (worth retrying) from the others, leaving the body whole for the caller.
func concurrentUpdate(resp *http.Response) bool {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return false
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	typ, _ := neutronError(b)
	return kindOf(resp.StatusCode, typ) == ErrConcurrentUpdate
}
