package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// The lifecycle of the containers ovn-docker run made, as the agent follows it from
// Docker's events (HandleEvent) and, for what happened while it was not listening, from
// Docker's containers (Reconcile):
//
//   - a user's container removed (docker rm, a --rm container that exits, ovn-docker
//     rm): its sandbox's interfaces are released (pool.Release, as rm does) and the
//     sandbox is removed;
//   - a sandbox removed: its interfaces are released;
//   - a sandbox started again (dockerd restarted with its restart policy, the VM
//     rebooted): it has a new network namespace, and its interfaces go into it with the
//     same Neutron ports, so the same MACs and addresses (engine.Replug); a user's
//     container that Docker started before that was done is said to be so, in the log and
//     on its interfaces (ps);
//   - a container stopped: nothing changes, it keeps its ports until it is removed.
//
// The work for one sandbox (its events and those of its container) is done in the
// order the events came, the work for different sandboxes at the same time.

// lifecycleTimeout bounds the work for one event.
const lifecycleTimeout = 2 * time.Minute

// lifecycle is what the service remembers between Docker's events.
type lifecycle struct {
	mu        sync.Mutex
	started   map[string]bool      // user containers seen starting, until seen removed
	replugged map[string]time.Time // sandbox -> when its interfaces were last put into a new namespace
	queue     serial
}

func (l *lifecycle) markStarted(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started == nil {
		l.started = map[string]bool{}
	}
	l.started[id] = true
}

// wasStarted says whether the container was seen starting, and forgets it.
func (l *lifecycle) wasStarted(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok := l.started[id]
	delete(l.started, id)
	return ok
}

func (l *lifecycle) setReplugged(sandbox string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.replugged == nil {
		l.replugged = map[string]time.Time{}
	}
	l.replugged[sandbox] = at
}

func (l *lifecycle) repluggedAt(sandbox string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.replugged[sandbox]
	return at, ok
}

func (l *lifecycle) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.replugged, id)
	delete(l.started, id)
}

// pidAlive says whether a process lives.
func pidAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

func (s *Service) lifecycleLog() *slog.Logger { return s.log.With("component", "lifecycle") }

// HandleEvent does what a container's start, die or destroy event asks, after what
// earlier events of the same sandbox asked; it does not wait for it (see WaitEvents).
// Failures are logged, and kept for status.
func (s *Service) HandleEvent(ctx context.Context, ev docker.Event) {
	r, sandbox := roleOf(ev.ID, ev.Labels)
	key := sandbox
	if key == "" {
		key = ev.ID
	}
	log := s.lifecycleLog()
	var work func(context.Context) error
	switch {
	case ev.Action == "destroy":
		// Whatever its labels: Attach's interfaces name their container too, and a
		// container of a Docker network may have ports waiting for it (see
		// ContainerRemoved).
		work = func(ctx context.Context) error { return s.ContainerRemoved(ctx, ev.ID, ev.Labels) }
	case ev.Action == "start" && r == roleSandbox:
		work = func(ctx context.Context) error { return s.SandboxStarted(ctx, ev.ID) }
	case ev.Action == "start" && r == roleContainer:
		work = func(ctx context.Context) error { return s.ContainerStarted(ctx, ev.ID, sandbox, ev.Time) }
	case ev.Action == "die" && r != roleOther:
		work = func(context.Context) error {
			log.Info("container stopped: it keeps its interfaces until it is removed", "container", short(ev.ID),
				"name", ev.Name, "sandbox", short(sandbox), "exit_code", ev.ExitCode)
			return nil
		}
	default:
		return
	}
	s.lc.queue.do(key, func() {
		wctx, cancel := context.WithTimeout(ctx, lifecycleTimeout)
		defer cancel()
		if err := work(wctx); err != nil && ctx.Err() == nil {
			log.Warn("container "+ev.Action, "container", short(ev.ID), "name", ev.Name, "err", err)
			s.NoteError("container "+ev.Action+" "+short(ev.ID), err)
		}
	})
}

// WaitEvents returns once the work of the events handled so far is done.
func (s *Service) WaitEvents() { s.lc.queue.wait() }

// ContainerRemoved releases what a container that Docker removed held: a sandbox's
// interfaces; for a user's container, its sandbox's interfaces and the sandbox (labels are
// the container's, as the event gave them). Nothing is done for what a run still
// undoes itself, or what a live process works on.
//
// A container of the Docker plugin's networks is the plugin's: the ports parked for it
// when it stopped are to be released here too (engine.TakeParked, as the plugin's
// ReleaseParked does), once the plugin's network removal waits for releases in flight:
// today it skips a port a live process releases and has Neutron delete the network
// while the port still exists, which Neutron refuses.
func (s *Service) ContainerRemoved(ctx context.Context, id string, labels map[string]string) error {
	defer s.lc.forget(id)
	eng, err := s.Engine(ctx)
	if err != nil {
		return err
	}
	// A container of the agent's Docker networks: the ports parked for it since it
	// stopped (or still its endpoints', the agent away when Docker let them go).
	if err := s.releaseContainer(ctx, eng, id); err != nil {
		return err
	}
	atts, err := eng.Attachments(ctx)
	if err != nil {
		return err
	}
	plan := planRemoval(atts, id, labels[LabelSandbox], s.lc.wasStarted(id), os.Getpid(), pidAlive)
	if plan.owner == "" {
		return nil
	}
	log := s.lifecycleLog()
	var errs []error
	for _, a := range plan.busy {
		log.Info("container removed: an interface of its sandbox is being worked on; left to that process",
			"container", short(id), "sandbox", short(plan.owner), "attachment", a.ID, "phase", a.Phase, "pid", a.PID)
	}
	released := 0
	for _, a := range plan.release {
		if err := pool.Release(ctx, eng, a.ID); err != nil {
			errs = append(errs, fmt.Errorf("release %s (port %s): %w", a.IfName, a.PortID, err))
			continue
		}
		released++
	}
	if released > 0 {
		log.Info("container removed: released its interfaces", "container", short(id), "sandbox", short(plan.owner),
			"released", released)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if plan.removeSandbox {
		return s.removeSandbox(ctx, plan.owner)
	}
	return nil
}

// removeSandbox removes a network sandbox of ovn-docker's (and nothing else).
func (s *Service) removeSandbox(ctx context.Context, id string) error {
	dc, err := s.Docker(ctx)
	if err != nil {
		return err
	}
	info, err := dc.Inspect(ctx, id)
	if errors.Is(err, docker.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.Labels[LabelRole] != "sandbox" {
		return nil
	}
	if err := dc.Remove(ctx, id, true); err != nil {
		// Someone else may be removing it (ovn-docker rm): gone is gone.
		if _, ierr := dc.Inspect(ctx, id); errors.Is(ierr, docker.ErrNotFound) {
			return nil
		}
		return err
	}
	s.lifecycleLog().Info("removed the sandbox of a removed container", "sandbox", short(id), "name", info.Name)
	return nil
}

// sandboxNow is a sandbox as Docker and the state have it now.
type sandboxNow struct {
	info  docker.Info
	atts  []*state.Attachment // its attachments, by interface name
	links map[string]bool     // the VM's pairs; nil when unknown
}

func (s *Service) sandboxNow(ctx context.Context, eng *engine.Engine, dc *docker.Client, id string) (*sandboxNow, error) {
	info, err := dc.Inspect(ctx, id)
	if errors.Is(err, docker.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	atts, err := eng.AttachmentsOf(ctx, id)
	if err != nil {
		return nil, err
	}
	links, err := eng.HostLinks(ctx)
	if err != nil {
		s.lifecycleLog().Warn("the VM's veths cannot be listed: only the namespaces are compared", "err", err)
		links = nil
	}
	return &sandboxNow{info: info, atts: atts, links: links}, nil
}

func (n *sandboxNow) stale() []*state.Attachment {
	if n == nil || !n.info.Running || n.info.Pid <= 0 {
		return nil
	}
	return stale(n.atts, docker.NetNSPath(n.info.Pid), n.links)
}

// SandboxStarted puts a sandbox's interfaces into its namespace again when that is a new
// one (its process changed: dockerd restarted it, the VM rebooted), with the same
// Neutron ports. A first start, whose run plumbs the interfaces itself, finds nothing to
// do. What cannot be done is said in the log and on the interfaces (ps).
func (s *Service) SandboxStarted(ctx context.Context, id string) error {
	eng, err := s.Engine(ctx)
	if err != nil {
		return err
	}
	dc, err := s.Docker(ctx)
	if err != nil {
		return err
	}
	now, err := s.sandboxNow(ctx, eng, dc, id)
	if err != nil {
		return err
	}
	todo := now.stale()
	if len(todo) == 0 {
		return nil
	}
	log := s.lifecycleLog()
	// Its container may already run (Docker started it first): it then started without
	// its network.
	var early []string
	if users, err := dc.List(ctx, LabelSandbox+"="+id); err == nil {
		for _, u := range users {
			if u.Running {
				early = append(early, u.Name)
			}
		}
	}
	netns := docker.NetNSPath(now.info.Pid)
	log.Info("sandbox started again in a new namespace: plumbing its interfaces into it", "sandbox", short(id),
		"name", now.info.Name, "netns", netns, "interfaces", len(todo))
	var errs []error
	for _, a := range todo {
		// The first interface carries the default route, as run made it.
		got, err := eng.Replug(ctx, a.ID, netns, a.ID == now.atts[0].ID)
		if err != nil {
			note := fmt.Sprintf("not plumbed again into its restarted sandbox: %v", err)
			log.Error("an interface could not be plumbed again into its restarted sandbox; its port is kept", "sandbox", short(id),
				"attachment", a.ID, "ifname", a.IfName, "port", a.PortID, "ip", a.IPs, "err", err)
			s.setNote(ctx, eng, a.ID, note)
			errs = append(errs, fmt.Errorf("%s of sandbox %s: %w", a.IfName, short(id), err))
			continue
		}
		log.Info("interface back in its restarted sandbox", "sandbox", short(id), "ifname", got.IfName,
			"port", got.PortID, "mac", got.MAC, "ips", got.IPs, "vlan", got.VLAN)
		if len(early) > 0 {
			s.setNote(ctx, eng, a.ID, fmt.Sprintf("container %s was already running when its interfaces were put back into its restarted sandbox", early[0]))
		}
	}
	s.lc.setReplugged(id, time.Now())
	if len(early) > 0 {
		log.Warn("container started before its interfaces were back in its restarted sandbox", "sandbox", short(id), "container", early[0])
	}
	return errors.Join(errs...)
}

// ContainerStarted notes a user's container that Docker started (at) before its
// sandbox's interfaces were back in the sandbox's new namespace, or while they still
// are not.
func (s *Service) ContainerStarted(ctx context.Context, id, sandbox string, at time.Time) error {
	s.lc.markStarted(id)
	eng, err := s.Engine(ctx)
	if err != nil {
		return err
	}
	log := s.lifecycleLog()
	if done, ok := s.lc.repluggedAt(sandbox); ok && at.Before(done) {
		atts, err := eng.AttachmentsOf(ctx, sandbox)
		if err != nil {
			return err
		}
		ahead := done.Sub(at).Round(time.Millisecond)
		log.Warn("container started before its interfaces were back in its restarted sandbox", "container", short(id),
			"sandbox", short(sandbox), "ahead", ahead.String())
		for _, a := range atts {
			if a.Error == "" { // a failed one says why already
				s.setNote(ctx, eng, a.ID, fmt.Sprintf("container started %s before its interfaces were back in its restarted sandbox", ahead))
			}
		}
		return nil
	}
	dc, err := s.Docker(ctx)
	if err != nil {
		return err
	}
	now, err := s.sandboxNow(ctx, eng, dc, sandbox)
	if err != nil || now == nil {
		return err
	}
	staleNow := now.stale()
	for _, a := range staleNow {
		why := a.Error
		if why == "" {
			why = "not plumbed into it again yet"
		}
		log.Warn("container started while an interface is not in its sandbox's namespace", "container", short(id),
			"sandbox", short(sandbox), "ifname", a.IfName, "port", a.PortID, "why", why)
		s.setNote(ctx, eng, a.ID, "container started while this interface was not in its sandbox's namespace: "+why)
	}
	if len(staleNow) == 0 {
		// A start with its network in place: what was said of an earlier one is past.
		for _, a := range now.atts {
			if a.Note != "" && a.Error == "" && a.PID == 0 {
				s.setNote(ctx, eng, a.ID, "")
			}
		}
	}
	return nil
}

func (s *Service) setNote(ctx context.Context, eng *engine.Engine, attID, note string) {
	if err := eng.SetNote(context.WithoutCancel(ctx), attID, note); err != nil {
		s.lifecycleLog().Warn("could not record a note", "attachment", attID, "note", note, "err", err)
	}
}

// runBusy says whether the run that made a sandbox is still working on it: a process of
// its own that lives, or a run of this process (the agent's).
func (s *Service) runBusy(sb docker.Info) bool {
	if pid, err := strconv.Atoi(sb.Labels[LabelPID]); err == nil && pid != os.Getpid() && pidAlive(pid) {
		return true
	}
	return s.isRunning(sb.Labels[LabelRun])
}

// Reconcile compares the interfaces of ovn-docker run's containers with Docker's
// containers, for what happened while no one listened to Docker's events (the agent
// stopped, dockerd restarted): the interfaces of a sandbox that no longer exists are
// released; a sandbox whose container is gone (and whose run is over) is released and
// removed; a running sandbox whose interfaces are not in its namespace gets them back
// (SandboxStarted). Docker's endpoints, the pools and what Attach made for others are
// left alone. It returns once that is done.
func (s *Service) Reconcile(ctx context.Context) error {
	eng, err := s.Engine(ctx)
	if err != nil {
		return err
	}
	dc, err := s.Docker(ctx)
	if err != nil {
		return err
	}
	// Docker before the state: a sandbox made after this look has its attachments'
	// owner set only once it exists, and is then confirmed by Inspect below.
	sbs, err := dc.List(ctx, LabelRole+"=sandbox")
	if err != nil {
		return err
	}
	users, err := dc.List(ctx, LabelSandbox)
	if err != nil {
		return err
	}
	atts, err := eng.Attachments(ctx)
	if err != nil {
		return err
	}
	links, err := eng.HostLinks(ctx)
	if err != nil {
		links = nil
	}
	sandboxes := map[string]docker.Info{}
	for _, sb := range sbs {
		sandboxes[sb.ID] = sb
	}
	used := map[string]bool{}
	for _, u := range users {
		used[u.Labels[LabelSandbox]] = true
	}
	work := planReconcile(atts, sandboxes, used, links, s.runBusy)
	log := s.lifecycleLog()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	run := func(key string, fn func(context.Context) error) {
		wg.Add(1)
		s.lc.queue.do(key, func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, lifecycleTimeout)
			defer cancel()
			if err := fn(wctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("sandbox %s: %w", short(key), err))
				mu.Unlock()
			}
		})
	}
	for _, owner := range work.gone {
		run(owner, func(ctx context.Context) error {
			if _, err := dc.Inspect(ctx, owner); !errors.Is(err, docker.ErrNotFound) {
				return nil // it exists (made since the list), or Docker cannot tell: kept
			}
			log.Info("the sandbox is gone: releasing its interfaces", "sandbox", short(owner))
			return s.ContainerRemoved(ctx, owner, nil)
		})
	}
	for _, sb := range work.orphans {
		run(sb, func(ctx context.Context) error {
			log.Info("the sandbox's container is gone: releasing its interfaces and removing it", "sandbox", short(sb))
			return s.releaseOrphan(ctx, eng, dc, sb)
		})
	}
	for _, sb := range work.replug {
		run(sb, func(ctx context.Context) error { return s.SandboxStarted(ctx, sb) })
	}
	wg.Wait()
	if n := len(work.gone) + len(work.orphans) + len(work.replug); n > 0 {
		log.Info("reconciled with Docker", "sandboxes_gone", len(work.gone), "orphaned", len(work.orphans),
			"replugged", len(work.replug), "errors", len(errs))
	}
	return errors.Join(errs...)
}

// releaseOrphan releases a sandbox's interfaces and removes it, once it is sure that no
// container runs in it and its run is over.
func (s *Service) releaseOrphan(ctx context.Context, eng *engine.Engine, dc *docker.Client, id string) error {
	info, err := dc.Inspect(ctx, id)
	if errors.Is(err, docker.ErrNotFound) {
		return s.ContainerRemoved(ctx, id, nil)
	}
	if err != nil {
		return err
	}
	users, err := dc.List(ctx, LabelSandbox+"="+id)
	if err != nil || len(users) > 0 || s.runBusy(info) {
		return err
	}
	atts, err := eng.AttachmentsOf(ctx, id)
	if err != nil {
		return err
	}
	rest, busy := atRest(atts, os.Getpid(), pidAlive)
	var errs []error
	for _, a := range rest {
		if sandboxPath(a) {
			errs = append(errs, pool.Release(ctx, eng, a.ID))
		}
	}
	if err := errors.Join(errs...); err != nil || len(busy) > 0 {
		return err
	}
	return s.removeSandbox(ctx, id)
}
