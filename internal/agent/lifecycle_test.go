package agent

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/docker"
)

// subscription is one EventsSince call of the watcher, driven by the test.
type subscription struct {
	since time.Time
	evs   chan docker.Event
	errc  chan error
}

// end ends the stream as Docker's does when dockerd goes: both channels closed, err
// told.
func (s subscription) end(err error) {
	close(s.evs)
	s.errc <- err
	close(s.errc)
}

type fakeEvents struct{ subs chan subscription }

func (f fakeEvents) EventsSince(_ context.Context, since time.Time) (<-chan docker.Event, <-chan error) {
	s := subscription{since: since, evs: make(chan docker.Event), errc: make(chan error, 1)}
	f.subs <- s
	return s.evs, s.errc
}

// fakeHandler tells the test, in order, what the watcher asks of the service.
type fakeHandler struct {
	calls     chan string
	reconcile chan error // what each Reconcile answers
	waited    chan struct{}
}

func (h *fakeHandler) HandleEvent(_ context.Context, ev docker.Event) {
	h.calls <- ev.Action + " " + ev.ID
}

func (h *fakeHandler) Reconcile(context.Context) error {
	h.calls <- "reconcile"
	return <-h.reconcile
}

func (h *fakeHandler) WaitEvents() { close(h.waited) }

// send gives the stream its events, in order, while the test looks at what the watcher
// does; the channel is closed once all were taken.
func send(s subscription, evs ...docker.Event) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, ev := range evs {
			s.evs <- ev
		}
	}()
	return done
}

func expect(t *testing.T, h *fakeHandler, want string) {
	t.Helper()
	if got := <-h.calls; got != want {
		t.Fatalf("the watcher asked %q, want %q", got, want)
	}
}

func TestWatcherResubscribesAndReconciles(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	src := fakeEvents{subs: make(chan subscription)}
	h := &fakeHandler{calls: make(chan string), reconcile: make(chan error, 1), waited: make(chan struct{})}
	delays := make(chan time.Duration)
	fire := make(chan time.Time)
	var noted []string
	w := &watcher{
		src: src, h: h, log: slog.New(slog.DiscardHandler), now: func() time.Time { return t0 },
		after:     func(d time.Duration) <-chan time.Time { delays <- d; return fire },
		noteError: func(what string, _ error) { noted = append(noted, what) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()

	// The first subscription, from the start on, then a reconciliation (the agent
	// missed everything before), then the events, in order.
	s := <-src.subs
	if !s.since.Equal(t0) {
		t.Fatalf("first subscription since %v, want %v", s.since, t0)
	}
	t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second)
	sent := send(s, docker.Event{Action: "start", ID: "a", Time: t1}, docker.Event{Action: "destroy", ID: "b", Time: t2})
	expect(t, h, "reconcile")
	h.reconcile <- nil
	expect(t, h, "start a")
	expect(t, h, "destroy b")
	<-sent

	// dockerd goes: the stream ends; the watcher waits, subscribes again from the last
	// event seen, and reconciles before the next events.
	s.end(errors.New("unexpected EOF"))
	if d := <-delays; d != resubscribeMin {
		t.Fatalf("waits %v before subscribing again, want %v", d, resubscribeMin)
	}
	fire <- time.Time{}
	s = <-src.subs
	if !s.since.Equal(t2) {
		t.Fatalf("second subscription since %v, want the last event's %v", s.since, t2)
	}
	expect(t, h, "reconcile")
	// Docker does not answer yet: the reconciliation fails, the stream too.
	h.reconcile <- errors.New("connection refused")
	s.end(errors.New("connection refused"))
	if d := <-delays; d != 2*resubscribeMin {
		t.Fatalf("waits %v before subscribing again, want %v (backing off)", d, 2*resubscribeMin)
	}
	if len(noted) != 1 {
		t.Fatalf("failures kept for status: %v", noted)
	}
	fire <- time.Time{}
	s = <-src.subs
	if !s.since.Equal(t2) {
		t.Fatalf("third subscription since %v, want %v", s.since, t2)
	}
	sent = send(s, docker.Event{Action: "start", ID: "c", Time: t2.Add(time.Second)})
	expect(t, h, "reconcile")
	h.reconcile <- nil
	expect(t, h, "start c")
	<-sent
	// Docker answered: the next wait starts over.
	s.end(errors.New("unexpected EOF"))
	if d := <-delays; d != resubscribeMin {
		t.Fatalf("waits %v after Docker answered, want %v", d, resubscribeMin)
	}

	// The agent stops while it waits: the watcher returns once the work is done.
	cancel()
	<-done
	select {
	case <-h.waited:
	default:
		t.Fatal("the watcher returned before the events' work was done")
	}
}

func TestWatcherStopsWithItsStream(t *testing.T) {
	src := fakeEvents{subs: make(chan subscription)}
	h := &fakeHandler{calls: make(chan string, 10), reconcile: make(chan error, 1), waited: make(chan struct{})}
	h.reconcile <- nil
	w := &watcher{src: src, h: h, log: slog.New(slog.DiscardHandler), now: time.Now,
		after: func(time.Duration) <-chan time.Time {
			t.Error("waited to subscribe again after the agent stopped")
			return nil
		},
		noteError: func(string, error) {}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	s := <-src.subs
	// The agent stops: the stream ends with the context, and the watcher with it.
	cancel()
	s.end(context.Canceled)
	<-done
	<-h.waited
}
