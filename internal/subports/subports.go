// Package subports merges the trunk changes of a VM's concurrent ovn-docker processes
// into few Neutron calls. Neutron applies one trunk's changes one at a time, and each
// add_subports or remove_subports call costs about as much as its first subport: a
// hundred runs started at once would queue a hundred calls on the one trunk. Here each
// change is written to a queue in the VM's state directory; whichever process holds the
// leader lock sends every change waiting for that trunk in one call and writes back the
// outcome. A change whose batch failed, or whose leader died during the call, comes back
// as ErrAlone: its own process then makes the individual call, with that call's
// handling of its particular errors (a VLAN taken, a trunk gone, a subport already
// there). The queue is coordination only: nothing in it is needed after a crash, and
// the entries of processes that died are dropped.
package subports

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/flock"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

// ErrAlone says the change was not made in a batch: the caller makes it by itself.
var ErrAlone = errors.New("trunk change not batched")

// Trunks is what a batch asks of Neutron; *neutron.Client implements it.
type Trunks interface {
	AddSubport(ctx context.Context, trunkID, portID string, vlan int) error
	RemoveSubport(ctx context.Context, trunkID, portID string) error
	AddSubports(ctx context.Context, trunkID string, subs []neutron.Subport) error
	RemoveSubports(ctx context.Context, trunkID string, portIDs []string) error
}

// Batcher queues trunk changes in a directory shared by a VM's processes.
type Batcher struct {
	dir     string
	neutron Trunks
	// Max bounds the changes sent in one call, so that one call stays well inside a
	// request's timeout.
	Max int
	// Project is the project of this process's credentials: a process sends only the
	// changes of processes with the same project's credentials, never lends its own to
	// another project's.
	Project string
	// written, for tests, is called with the queue just written, under its lock: they wait
	// for changes to be queued through it instead of polling the file.
	written func(q []entry)
}

// New makes the queue's directory (readable by root only) if needed.
func New(dir string, n Trunks) (*Batcher, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("trunk change queue: %w", err)
	}
	return &Batcher{dir: dir, neutron: n, Max: 25}, nil
}

type op string

const (
	opAdd    op = "add"
	opRemove op = "remove"
)

// entry is one process's change.
type entry struct {
	ID     string    `json:"id"`
	PID    int       `json:"pid"`
	Trunk  string    `json:"trunk"`
	Proj   string    `json:"project"`
	Op     op        `json:"op"`
	Port   string    `json:"port"`
	VLAN   int       `json:"vlan,omitempty"`
	Leader int       `json:"leader,omitempty"` // the process sending it now
	Result string    `json:"result,omitempty"` // "ok", or "alone"
	Since  time.Time `json:"since"`
}

const (
	resultOK    = "ok"
	resultAlone = "alone"
)

// Add makes the port a subport of the trunk with the VLAN, in a batch.
func (b *Batcher) Add(ctx context.Context, trunkID, portID string, vlan int) error {
	return b.do(ctx, entry{Trunk: trunkID, Op: opAdd, Port: portID, VLAN: vlan})
}

// Remove takes the port off the trunk, in a batch.
func (b *Batcher) Remove(ctx context.Context, trunkID, portID string) error {
	return b.do(ctx, entry{Trunk: trunkID, Op: opRemove, Port: portID})
}

func (b *Batcher) do(ctx context.Context, mine entry) (err error) {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	mine.ID, mine.PID, mine.Since, mine.Proj = hex.EncodeToString(id), os.Getpid(), time.Now().UTC(), b.Project
	if err := b.update(ctx, func(q []entry) ([]entry, error) { return append(q, mine), nil }); err != nil {
		return err
	}
	// Whatever happens, the entry leaves the queue with this call; a late answer for it
	// is ignored.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = b.update(cctx, func(q []entry) ([]entry, error) { return without(q, mine.ID), nil })
	}()
	lead, err := b.lock(ctx)
	if err != nil {
		return err
	}
	defer lead()
	result, batch, err := b.take(ctx, mine.ID)
	switch {
	case err != nil:
		return err
	case result == resultOK:
		return nil
	case result != "":
		return ErrAlone
	}
	return b.send(ctx, mine, batch)
}

// take, under the leader lock, returns the change's result if it has one; else it marks
// the changes waiting for the same trunk as sent by this process and returns them (the
// caller's own first).
func (b *Batcher) take(ctx context.Context, id string) (result string, batch []entry, err error) {
	err = b.update(ctx, func(q []entry) ([]entry, error) {
		var kept []entry
		for _, e := range q {
			switch {
			case e.PID != os.Getpid() && !alive(e.PID):
				continue // its process died: nobody waits for it
			case e.Result == "" && e.Leader != 0 && e.Leader != os.Getpid() && !alive(e.Leader):
				// Sent by a leader that died: was it made? Its own process will tell.
				e.Leader, e.Result = 0, resultAlone
			}
			kept = append(kept, e)
		}
		var me *entry
		for i := range kept {
			if kept[i].ID == id {
				me = &kept[i]
			}
		}
		if me == nil {
			// Lost with a queue that could not be read: go alone.
			result = resultAlone
			return kept, nil
		}
		if me.Result != "" {
			result = me.Result
			return kept, nil
		}
		batch = append(batch, *me)
		me.Leader = os.Getpid()
		for i := range kept {
			e := &kept[i]
			if len(batch) >= b.Max {
				break
			}
			if e.ID == id || e.Result != "" || e.Leader != 0 || e.Trunk != me.Trunk || e.Proj != me.Proj {
				continue
			}
			e.Leader = os.Getpid()
			batch = append(batch, *e)
		}
		return kept, nil
	})
	return result, batch, err
}

// send makes the batch's changes, removals first (they may free VLANs the additions
// use), and writes their results. The leader's own change (batch[0]) is answered with
// its call's error when it went alone, else with ErrAlone when its batch failed.
func (b *Batcher) send(ctx context.Context, mine entry, batch []entry) error {
	results := map[string]string{}
	var own error
	for _, o := range []op{opRemove, opAdd} {
		var group []entry
		for _, e := range batch {
			if e.Op == o {
				group = append(group, e)
			}
		}
		if len(group) == 0 {
			continue
		}
		var err error
		switch {
		case len(group) == 1 && o == opAdd:
			// Alone, the single call: it knows a repeated change from a real conflict.
			err = b.neutron.AddSubport(ctx, mine.Trunk, group[0].Port, group[0].VLAN)
		case len(group) == 1:
			err = b.neutron.RemoveSubport(ctx, mine.Trunk, group[0].Port)
		case o == opAdd:
			subs := make([]neutron.Subport, len(group))
			for i, e := range group {
				subs[i] = neutron.Subport{PortID: e.Port, VLAN: e.VLAN}
			}
			err = b.neutron.AddSubports(ctx, mine.Trunk, subs)
		default:
			ports := make([]string, len(group))
			for i, e := range group {
				ports[i] = e.Port
			}
			err = b.neutron.RemoveSubports(ctx, mine.Trunk, ports)
		}
		r := resultOK
		if err != nil {
			r = resultAlone
		}
		for _, e := range group {
			results[e.ID] = r
			if e.ID == mine.ID && err != nil {
				// Alone, the error is this change's own; in a batch, any one change may
				// have failed it, and each goes alone.
				own = ErrAlone
				if len(group) == 1 {
					own = err
				}
			}
		}
	}
	// The answers go out even when this process's time is up: the others wait for them.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := b.update(cctx, func(q []entry) ([]entry, error) {
		for i := range q {
			if r, ok := results[q[i].ID]; ok && q[i].Leader == os.Getpid() {
				q[i].Result, q[i].Leader = r, 0
			}
		}
		return q, nil
	})
	if own != nil {
		return own
	}
	return err
}

// lock takes the leader lock; the returned func releases it.
func (b *Batcher) lock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(filepath.Join(b.dir, "leader.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("trunk change queue: %w", err)
	}
	if err := flock.Lock(ctx, f, unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("wait for the trunk change queue: %w", err)
	}
	return func() { flock.Unlock(f) }, nil
}

// update changes the queue file under its own lock, held only for the read and write.
func (b *Batcher) update(ctx context.Context, fn func([]entry) ([]entry, error)) error {
	f, err := os.OpenFile(filepath.Join(b.dir, "queue.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("trunk change queue: %w", err)
	}
	if err := flock.Lock(ctx, f, unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock the trunk change queue: %w", err)
	}
	defer flock.Unlock(f)
	path := filepath.Join(b.dir, "queue.json")
	var q []entry
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read the trunk change queue: %w", err)
	case len(data) > 0:
		// A queue that cannot be read (a crash mid-write is ruled out by the rename, but
		// not a hand-edited file) is started afresh: its waiters then go alone.
		if json.Unmarshal(data, &q) != nil {
			q = nil
		}
	}
	q, err = fn(q)
	if err != nil {
		return err
	}
	out, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("encode the trunk change queue: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return fmt.Errorf("write the trunk change queue: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write the trunk change queue: %w", err)
	}
	if b.written != nil {
		b.written(q)
	}
	return nil
}

func without(q []entry, id string) []entry {
	out := q[:0]
	for _, e := range q {
		if e.ID != id {
			out = append(out, e)
		}
	}
	return out
}

func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
