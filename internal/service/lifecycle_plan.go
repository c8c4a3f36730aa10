package service

import (
	"regexp"
	"slices"
	"sync"

	"github.com/docker/docker/api/types/container"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// The decisions of lifecycle.go, on what it read of the state and of Docker: which
// container means which release, which sandbox is plumbed again.

// serial runs functions one after the other per key, in the order they were given,
// and those of different keys at the same time.
type serial struct {
	mu      sync.Mutex
	pending map[string][]func() // a key is present while its functions run
	wg      sync.WaitGroup
}

// do runs fn after the functions given before for the same key; it does not wait.
func (q *serial) do(key string, fn func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.wg.Add(1)
	if q.pending == nil {
		q.pending = map[string][]func(){}
	}
	if rest, busy := q.pending[key]; busy {
		q.pending[key] = append(rest, fn)
		return
	}
	q.pending[key] = nil
	go q.drain(key, fn)
}

func (q *serial) drain(key string, fn func()) {
	for {
		fn()
		q.wg.Done()
		q.mu.Lock()
		rest := q.pending[key]
		if len(rest) == 0 {
			delete(q.pending, key)
			q.mu.Unlock()
			return
		}
		fn, q.pending[key] = rest[0], rest[1:]
		q.mu.Unlock()
	}
}

// wait returns once every function given so far has run.
func (q *serial) wait() { q.wg.Wait() }

// role is what a container is to ovn-docker run.
type role int

const (
	roleOther     role = iota // not made by ovn-docker run (a Docker network's, or none)
	roleSandbox               // a network sandbox
	roleContainer             // a user's container, in a sandbox's namespace
)

// roleOf tells what a container is from its labels, and its sandbox (itself for a
// sandbox).
func roleOf(id string, labels map[string]string) (role, string) {
	switch {
	case labels[LabelRole] == "sandbox":
		return roleSandbox, id
	case labels[LabelSandbox] != "":
		return roleContainer, labels[LabelSandbox]
	}
	return roleOther, ""
}

var (
	containerIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	procNetNSRE   = regexp.MustCompile(`^/proc/[0-9]+/ns/net$`)
)

// sandboxPath says whether an attachment is one that ovn-docker run made: held by a
// sandbox container (a Docker container's ID, not a run in progress) in its process's
// namespace. Docker endpoints, pools and what Attach made for others are not.
func sandboxPath(a *state.Attachment) bool {
	return (a.OwnerKind == state.OwnerSandbox || a.OwnerKind == "") && containerIDRE.MatchString(a.Owner) &&
		procNetNSRE.MatchString(a.NetNS)
}

// atRest splits attachments into those no live process works on (at rest, or left by a
// dead process) and those one does (being made, released or plumbed again: left to it).
func atRest(atts []*state.Attachment, self int, alive func(int) bool) (rest, busy []*state.Attachment) {
	for _, a := range atts {
		if a.PID == 0 || (a.PID != self && !alive(a.PID)) {
			rest = append(rest, a)
		} else {
			busy = append(busy, a)
		}
	}
	return rest, busy
}

// removal is what goes when a container is removed.
type removal struct {
	owner   string              // the sandbox whose interfaces go ("" when none)
	release []*state.Attachment // its interfaces at rest: released
	busy    []*state.Attachment // its interfaces a live process works on: left to it
	// removeSandbox: the sandbox goes too, once its interfaces are released (its
	// container is gone).
	removeSandbox bool
}

// planRemoval decides what goes when container id is removed: when it is a sandbox,
// its interfaces; when it is a user's container, its sandbox's interfaces and the
// sandbox. A user's container counts once its run is over: its interfaces name it
// (the run labels them once the container started), or it was seen starting (its run
// cannot fail any more, even if it has not labelled them yet). Before that, the run
// itself undoes what it made. Interfaces already released (ovn-docker rm releases them
// before it removes the container, and the sandbox after) leave nothing to do.
func planRemoval(atts []*state.Attachment, id, sandboxLabel string, started bool, self int, alive func(int) bool) removal {
	var r removal
	owned := func(owner string) []*state.Attachment {
		var out []*state.Attachment
		for _, a := range atts {
			if a.Owner == owner && sandboxPath(a) {
				out = append(out, a)
			}
		}
		return out
	}
	if mine := owned(id); len(mine) > 0 {
		r.owner = id
		r.release, r.busy = atRest(mine, self, alive)
		return r
	}
	for _, a := range atts {
		if a.Container == id && sandboxPath(a) {
			r.owner = a.Owner
			break
		}
	}
	if r.owner == "" && sandboxLabel != "" && started {
		r.owner = sandboxLabel
	}
	if r.owner == "" {
		return r
	}
	r.release, r.busy = atRest(owned(r.owner), self, alive)
	r.removeSandbox = len(r.release) > 0 && len(r.busy) == 0
	return r
}

// stale lists the attachments at rest that are not whole in netns, their owner's
// namespace now: recorded in another one (the owner's process changed), or their pair
// is gone (a VM that rebooted may give the new process the old one's PID). links are
// the pairs in the VM; nil when unknown.
func stale(atts []*state.Attachment, netns string, links map[string]bool) []*state.Attachment {
	var out []*state.Attachment
	for _, a := range atts {
		if a.Phase != state.PhaseAttached || a.PID != 0 || !sandboxPath(a) {
			continue
		}
		if a.NetNS != netns || (links != nil && !links[a.HostIf]) {
			out = append(out, a)
		}
	}
	return out
}

// reconcileWork is what one reconciliation with Docker's containers finds to do, by
// sandbox.
type reconcileWork struct {
	gone    []string // owners that are not among Docker's sandboxes: released once Docker says they do not exist
	orphans []string // sandboxes whose user's container is gone, their run over: released and removed
	replug  []string // running sandboxes whose interfaces are not in their namespace
}

// planReconcile compares the attachments of ovn-docker run's containers at rest with
// Docker's sandboxes (by ID), the sandboxes some container runs in (used) and the VM's
// pairs (links, nil when unknown). busy says whether a sandbox's run is still working.
func planReconcile(atts []*state.Attachment, sandboxes map[string]docker.Info, used map[string]bool, links map[string]bool,
	busy func(docker.Info) bool) reconcileWork {
	var w reconcileWork
	seen := map[string]bool{}
	for _, a := range atts {
		if !sandboxPath(a) || a.PID != 0 || seen[a.Owner] {
			continue
		}
		sb, ok := sandboxes[a.Owner]
		switch {
		case !ok:
			seen[a.Owner] = true
			w.gone = append(w.gone, a.Owner)
		case !used[a.Owner] && !busy(sb):
			seen[a.Owner] = true
			w.orphans = append(w.orphans, a.Owner)
		case sb.Running && sb.Pid > 0 && len(stale([]*state.Attachment{a}, docker.NetNSPath(sb.Pid), links)) > 0:
			seen[a.Owner] = true
			w.replug = append(w.replug, a.Owner)
		}
	}
	slices.Sort(w.gone)
	slices.Sort(w.orphans)
	slices.Sort(w.replug)
	return w
}

// sandboxRestartPolicy is the restart policy of the sandbox of a container that has
// policy p: always stays always; any other keeps the sandbox's own, unless-stopped. The
// pause process exits 0 when stopped, so on-failure would never bring the sandbox back,
// and a sandbox that stays down leaves its container nothing to start in (Docker then
// refuses to start it); a sandbox that comes back without its container only holds its
// interfaces, which a stopped container keeps anyway.
func sandboxRestartPolicy(p container.RestartPolicy) container.RestartPolicy {
	if p.Name == container.RestartPolicyAlways {
		return p
	}
	return container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
}
