package service

import (
	"context"
	"errors"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// GC releases what interrupted work left half made or half released, then looks for
// orphans twice, r.Grace apart, and deletes what was orphaned both times: interfaces
// whose container is gone, this VM's Neutron ports, access ports and veths that nothing
// records, network sandboxes without their container.
func (s *Service) GC(ctx context.Context, r api.GCRequest) (*api.GCResult, error) {
	if r.Grace < 0 {
		return nil, api.Invalid(errors.New("--grace must not be negative"))
	}
	eng, err := s.Engine(ctx)
	if err != nil {
		return nil, err
	}
	res := &api.GCResult{}
	var errs []error
	if r.DrainPools {
		n, err := drainPools(ctx, eng)
		res.Drained = n
		if err != nil {
			errs = append(errs, err)
		}
	}
	var owners engine.Owners
	dc, derr := s.Docker(ctx)
	if derr == nil {
		owners = &sandboxOwners{dc: dc, vif: eng.Config().VIFID}
	} else {
		s.log.Warn("docker is not reachable: containers cannot be checked, their interfaces are kept", "err", derr)
	}
	// Two passes: the first marks, the second deletes what is still orphaned.
	first, _ := eng.GC(ctx, owners, r.Grace)
	var sandboxes map[string]bool
	if dc != nil {
		sandboxes, _ = s.orphanSandboxes(ctx, dc, eng)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(r.Grace):
	}
	if o, ok := owners.(*sandboxOwners); ok {
		o.reset()
	}
	second, err := eng.GC(ctx, owners, r.Grace)
	if err != nil {
		errs = append(errs, err)
	}
	if dc != nil {
		still, _ := s.orphanSandboxes(ctx, dc, eng)
		owned := map[string]bool{}
		if atts, err := eng.Attachments(ctx); err == nil {
			for _, at := range atts {
				owned[at.Owner] = true
			}
		}
		for id := range still {
			if sandboxes[id] && !owned[id] {
				if rerr := dc.Remove(ctx, id, true); rerr == nil {
					res.Sandboxes++
				}
			}
		}
	}
	second.Interrupted += first.Interrupted
	second.OwnerGone += first.OwnerGone
	res.Interrupted, res.OwnerGone, res.Ports, res.OVSPorts = second.Interrupted, second.OwnerGone, second.Ports, second.OVSPorts
	res.Veths, res.Marked, res.Errors = second.Veths, second.Marked, second.Errors
	res.Summary = second.String()
	return res, errors.Join(errs...)
}

// sandboxOwners says whether the sandbox owning an attachment still serves a container.
type sandboxOwners struct {
	dc   *docker.Client
	vif  string
	used map[string]bool // sandboxes some container runs in
}

var _ engine.Owners = (*sandboxOwners)(nil)

func (o *sandboxOwners) reset() { o.used = nil }

func (o *sandboxOwners) Alive(ctx context.Context, a *state.Attachment) (bool, bool) {
	if a.OwnerKind == state.OwnerParked {
		// Kept for a stopped container: as long as Docker has it.
		_, err := o.dc.Inspect(ctx, a.Owner)
		switch {
		case err == nil:
			return true, true
		case errors.Is(err, docker.ErrNotFound):
			return false, true
		}
		return false, false
	}
	if a.OwnerKind != state.OwnerSandbox && a.OwnerKind != "" {
		return false, false // a Docker endpoint: the daemon's to judge
	}
	if o.used == nil {
		users, err := o.dc.List(ctx, LabelSandbox)
		if err != nil {
			return false, false
		}
		o.used = map[string]bool{}
		for _, u := range users {
			o.used[u.Labels[LabelSandbox]] = true
		}
	}
	if o.used[a.Owner] {
		return true, true
	}
	_, err := o.dc.Inspect(ctx, a.Owner)
	if err != nil && !errors.Is(err, docker.ErrNotFound) {
		return false, false
	}
	// The sandbox is gone, or no container runs in it any more: its interfaces serve nobody.
	return false, true
}

// orphanSandboxes lists this VM's sandboxes that no container runs in and whose
// creating run is over.
func (s *Service) orphanSandboxes(ctx context.Context, dc *docker.Client, eng *engine.Engine) (map[string]bool, error) {
	sbs, err := dc.List(ctx, LabelRole+"=sandbox")
	if err != nil {
		return nil, err
	}
	users, err := dc.List(ctx, LabelSandbox)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, u := range users {
		used[u.Labels[LabelSandbox]] = true
	}
	out := map[string]bool{}
	for _, sb := range sbs {
		if sb.Labels[LabelVM] != eng.Config().VIFID || used[sb.ID] {
			continue
		}
		if pid, err := strconv.Atoi(sb.Labels[LabelPID]); err == nil && pid != os.Getpid() && unix.Kill(pid, 0) == nil {
			continue // the run that made it is still working
		}
		if s.isRunning(sb.Labels[LabelRun]) {
			continue // a run of this process (the agent's) is still working
		}
		out[sb.ID] = true
	}
	return out, nil
}

// drainPools releases the ready interfaces of the VM's pools.
func drainPools(ctx context.Context, eng *engine.Engine) (int, error) {
	atts, err := eng.Attachments(ctx)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, at := range atts {
		if at.OwnerKind != state.OwnerPool || at.PID != 0 {
			continue
		}
		if err := eng.Detach(ctx, at.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
