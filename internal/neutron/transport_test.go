package neutron

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/flock/flocktest"
	"github.com/ovn-docker/ovn-docker/internal/testutil/scratch"
	"github.com/ovn-docker/ovn-docker/internal/throttle"
)

// The VM-wide slots are what the wiring gives Transport.
var _ Slots = (*throttle.Slots)(nil)

// server answers each request with the next status of seq (then 200), counting requests
// and keeping the bodies it got.
func server(t *testing.T, seq []int, body409 string) (*httptest.Server, *atomic.Int32, *[]string) {
	var n atomic.Int32
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		i := int(n.Add(1)) - 1
		code := 200
		if i < len(seq) {
			code = seq[i]
		}
		w.WriteHeader(code)
		if code == 409 {
			io.WriteString(w, body409)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n, &bodies
}

func do(t *testing.T, method, url, body string) (*http.Response, error) {
	t.Helper()
	tr := &Transport{Next: http.DefaultTransport, Backoff: time.Millisecond}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	return (&http.Client{Transport: tr}).Do(req)
}

func TestRetryPolicy(t *testing.T) {
	stale := `{"NeutronError": {"type": "StaleDataError", "message": "x"}}`
	real := `{"NeutronError": {"type": "DuplicateSubPort", "message": "vlan in use"}}`
	for _, tc := range []struct {
		name     string
		method   string
		seq      []int
		body409  string
		wantCode int
		wantReqs int32
	}{
		{"503 then ok", "POST", []int{503, 503}, "", 200, 3},
		{"502 on a GET", "GET", []int{502}, "", 200, 2},
		{"500 on a PUT is retried", "PUT", []int{500}, "", 200, 2},
		{"500 on a POST is not: it may have done something", "POST", []int{500}, "", 500, 1},
		{"409 of a concurrent update", "PUT", []int{409}, stale, 200, 2},
		{"409 of a real conflict", "PUT", []int{409}, real, 409, 1},
		{"404 is an answer", "DELETE", []int{404}, "", 404, 1},
		{"gives up after six", "GET", []int{503, 503, 503, 503, 503, 503, 503}, "", 503, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, n, bodies := server(t, tc.seq, tc.body409)
			resp, err := do(t, tc.method, srv.URL, `{"port": {}}`)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || n.Load() != tc.wantReqs {
				t.Fatalf("status %d after %d requests, want %d after %d", resp.StatusCode, n.Load(), tc.wantCode, tc.wantReqs)
			}
			if tc.wantCode == 409 && string(b) != tc.body409 {
				t.Fatalf("the 409's body was lost: %q", b)
			}
			for _, got := range *bodies {
				if got != `{"port": {}}` {
					t.Fatalf("a retry sent body %q", got)
				}
			}
		})
	}
}

// counting is a Next that counts the attempts it is given.
type counting struct {
	next http.RoundTripper
	n    atomic.Int32
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func TestPostIsRetriedWhenNeverSent(t *testing.T) {
	// Nothing listens: the request never reached a server, so a POST may go again.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	next := &counting{next: http.DefaultTransport}
	tr := &Transport{Next: next, Backoff: time.Millisecond}
	req, _ := http.NewRequest("POST", url, strings.NewReader("x"))
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("no error from a closed server")
	}
	if n := next.n.Load(); n != 6 {
		t.Fatalf("%d attempts, want 6: a POST that was never sent is retried", n)
	}
}

// Once the caller's deadline passes, no attempt and no wait between attempts starts.
func TestRetryStopsWithTheCallersContext(t *testing.T) {
	t.Run("during a wait", func(t *testing.T) {
		srv, n, _ := server(t, []int{503, 503, 503, 503, 503}, "")
		ctx, expire := flocktest.ManualDeadline()
		var waits int
		tr := &Transport{Next: http.DefaultTransport, Backoff: 50 * time.Millisecond,
			after: func(time.Duration) <-chan time.Time {
				waits++
				if waits == 2 {
					// The deadline passes during the second wait, which would not end
					// by itself.
					expire()
					return nil
				}
				return instant()
			}}
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the caller's deadline", err)
		}
		if n.Load() != 2 || waits != 2 {
			t.Fatalf("%d requests and %d waits: the retries outlived the caller's context", n.Load(), waits)
		}
	})
	t.Run("during a request", func(t *testing.T) {
		ctx, expire := flocktest.ManualDeadline()
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 2 {
				expire() // while the second request is in flight
			}
			w.WriteHeader(503)
		}))
		t.Cleanup(srv.Close)
		var waits int
		tr := &Transport{Next: http.DefaultTransport, Backoff: 50 * time.Millisecond,
			after: func(time.Duration) <-chan time.Time { waits++; return instant() }}
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			// The 503 may have come in before the transport saw the deadline: the caller
			// gets it, as the last answer.
			resp.Body.Close()
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the caller's deadline", err)
		}
		if n.Load() != 2 || waits != 1 {
			t.Fatalf("%d requests and %d waits: the retries outlived the caller's context", n.Load(), waits)
		}
	})
}

// instant is a wait between tries that is over at once.
func instant() <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

func TestSlotsBoundRequestsInFlight(t *testing.T) {
	var inFlight, peak atomic.Int32
	gate := make(chan struct{})
	letGo := sync.OnceFunc(func() { close(gate) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := inFlight.Add(1)
		for {
			p := peak.Load()
			if v <= p || peak.CompareAndSwap(p, v) {
				break
			}
		}
		<-gate
		inFlight.Add(-1)
	}))
	t.Cleanup(srv.Close) // after the requests end (cleanups run last first)
	dir := scratch.Dir(t)
	slots, err := throttle.NewSlots(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	// Two transports stand for two processes: the slots are files, not memory.
	clients := []*http.Client{
		{Transport: &Transport{Next: http.DefaultTransport, Slots: slots}},
		{Transport: &Transport{Next: &http.Transport{}, Slots: slots}},
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		letGo()
		wg.Wait()
	})
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := clients[i%2].Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
	}
	// Two requests are at the server, held there, and the ten others wait in the kernel
	// for their slots: none of them is in flight, however long they wait.
	slotFiles := []string{filepath.Join(dir, "slot-0"), filepath.Join(dir, "slot-1")}
	held := flocktest.Await(func() bool {
		if inFlight.Load() != 2 {
			return false
		}
		_, waiting := flocktest.Count(t, slotFiles...)
		return waiting == 10
	}, func() bool { return inFlight.Load() > 2 })
	if !held {
		t.Fatalf("%d requests in flight with 2 slots", inFlight.Load())
	}
	letGo()
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak of %d requests in flight with 2 slots", p)
	}
}
