package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/docker"
)

// The agent follows its containers' lifecycles through Docker's events: it hands each
// event to the service, which decides (service.HandleEvent), and after each
// subscription, since events were missed before it (the agent starting, dockerd
// restarting), it has the service compare the state with Docker's containers
// (service.Reconcile).

// events is where the watcher reads Docker's container events: a stream from since on,
// both channels closed when it ends, the error channel then yielding why.
type events interface {
	EventsSince(ctx context.Context, since time.Time) (<-chan docker.Event, <-chan error)
}

// lifecycleHandler is the service's side of the watcher.
type lifecycleHandler interface {
	HandleEvent(ctx context.Context, ev docker.Event)
	Reconcile(ctx context.Context) error
	WaitEvents()
}

// Backoff of the subscription after Docker's stream ended. Trying a local socket costs
// little, and the sooner the agent is back, the sooner a restarted sandbox has its
// interfaces again.
const (
	resubscribeMin = 200 * time.Millisecond
	resubscribeMax = time.Second
)

// watcher subscribes to Docker's events again whenever the stream ends.
type watcher struct {
	src events
	h   lifecycleHandler
	log *slog.Logger
	now func() time.Time
	// after is time.After: the wait before subscribing again (tests answer at once).
	after func(time.Duration) <-chan time.Time
	// noteError keeps a failure for status.
	noteError func(what string, err error)
}

// run follows Docker's events until ctx ends, then waits for the work they started.
func (w *watcher) run(ctx context.Context) {
	defer w.h.WaitEvents()
	// Events are asked for from the last one seen on (or the start): those the daemon
	// still has since then are not missed. The reconciliation after each subscription
	// covers the rest.
	since := w.now()
	delay := resubscribeMin
	for {
		sctx, cancel := context.WithCancel(ctx)
		evs, errc := w.src.EventsSince(sctx, since)
		rerr := w.h.Reconcile(ctx)
		if rerr != nil && ctx.Err() == nil {
			w.log.Warn("reconcile with Docker's containers", "err", rerr)
			w.noteError("reconcile with Docker's containers", rerr)
		}
		n := 0
		for ev := range evs {
			n++
			if ev.Time.After(since) {
				since = ev.Time
			}
			w.h.HandleEvent(ctx, ev)
		}
		err := <-errc
		cancel()
		if ctx.Err() != nil {
			return
		}
		if n > 0 || rerr == nil {
			delay = resubscribeMin // Docker answered: it may only have restarted
		}
		w.log.Warn("Docker's events stopped; subscribing again", "err", err, "in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-w.after(delay):
		}
		delay = min(2*delay, resubscribeMax)
	}
}

// EventsSince is the events of the VM's dockerd through the service, which connects
// again after dockerd restarts.
func (d serviceDocker) EventsSince(ctx context.Context, since time.Time) (<-chan docker.Event, <-chan error) {
	c, err := d.svc.Docker(ctx)
	if err != nil {
		evs, errc := make(chan docker.Event), make(chan error, 1)
		close(evs)
		errc <- err
		close(errc)
		return evs, errc
	}
	return c.EventsSince(ctx, since)
}
