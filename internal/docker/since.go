package docker

import (
	"context"
	"time"
)

// EventsSince is Events with the daemon replaying its events from since on (those it
// still holds: a daemon keeps its latest few hundred, and none from before it started).
// A watcher that subscribes again after its stream ended (dockerd restarted, say) passes
// the time of the last event it saw, and so misses none of those in between that the
// daemon still has.
func (c *Client) EventsSince(ctx context.Context, since time.Time, labels ...string) (<-chan Event, <-chan error) {
	cc := *c // the same connection; since is this call's alone
	cc.eventsSince = since
	return cc.Events(ctx, labels...)
}
