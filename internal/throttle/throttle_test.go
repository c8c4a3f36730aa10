package throttle

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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

func TestPostIsRetriedWhenNeverSent(t *testing.T) {
	// Nothing listens: the request never reached a server, so a POST may go again.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	start := time.Now()
	_, err := do(t, "POST", url, "x")
	if err == nil {
		t.Fatal("no error from a closed server")
	}
	if time.Since(start) < 5*time.Millisecond {
		t.Fatal("gave up without retrying")
	}
}

func TestRetryStopsWithTheCallersContext(t *testing.T) {
	srv, n, _ := server(t, []int{503, 503, 503, 503, 503}, "")
	tr := &Transport{Next: http.DefaultTransport, Backoff: 50 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := tr.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	if n.Load() >= 5 {
		t.Fatalf("%d requests: the retries outlived the caller's context", n.Load())
	}
}

func TestSlotsBoundRequestsInFlight(t *testing.T) {
	var inFlight, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := inFlight.Add(1)
		for {
			p := peak.Load()
			if v <= p || peak.CompareAndSwap(p, v) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
	}))
	defer srv.Close()
	slots, err := NewSlots(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	// Two transports stand for two processes: the slots are files, not memory.
	clients := []*http.Client{
		{Transport: &Transport{Next: http.DefaultTransport, Slots: slots}},
		{Transport: &Transport{Next: &http.Transport{}, Slots: slots}},
	}
	var wg sync.WaitGroup
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
	wg.Wait()
	if p := peak.Load(); p > 2 || p < 1 {
		t.Fatalf("peak of %d requests in flight with 2 slots", p)
	}
}

func TestSlotWaitEndsWithContext(t *testing.T) {
	slots, _ := NewSlots(t.TempDir(), 1)
	release, err := slots.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := slots.Acquire(ctx); err == nil {
		t.Fatal("a second holder got the only slot")
	}
}

// A waiter that gave up must not keep the slot it is still queued for in the kernel.
func TestAbandonedWaitGivesTheSlotBack(t *testing.T) {
	slots, _ := NewSlots(t.TempDir(), 1)
	release, err := slots.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := slots.Acquire(ctx); err == nil {
		t.Fatal("a second holder got the only slot")
	}
	release()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	again, err := slots.Acquire(ctx2)
	if err != nil {
		t.Fatalf("the slot stayed with the waiter that gave up: %v", err)
	}
	again()
}
