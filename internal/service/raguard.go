package service

// The RA guard of the VM's bridge (package raguard): made sure of by every attach (the
// engine), at the agent's start and by setup; doctor checks it.

import (
	"context"
	"fmt"

	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/raguard"
)

func (s *Service) guardOf(sw *ovs.Client) *raguard.Guard {
	return &raguard.Guard{Switch: sw, OVSDB: s.cfg.OVSDB, RunDir: s.cfg.OVSRunDir, Bridge: s.cfg.Bridge, Uplink: s.cfg.Uplink}
}

// EnsureGuard installs the bridge's guard, or puts back what is missing of it; it
// returns the flow mods that took (0: it was in place).
func (s *Service) EnsureGuard(ctx context.Context) (int, error) {
	sw, err := s.OVS(ctx)
	if err != nil {
		return 0, err
	}
	n, err := s.guardOf(sw).Ensure(ctx)
	if err != nil {
		return 0, fmt.Errorf("ra guard on %s: %w", s.cfg.Bridge, err)
	}
	return n, nil
}

// WatchGuard keeps the guard in place until ctx ends (the agent's): see raguard.Watch.
func (s *Service) WatchGuard(ctx context.Context, report func(mods int, err error)) {
	sw, err := s.OVS(ctx)
	if err != nil {
		report(0, err)
		return
	}
	s.guardOf(sw).Watch(ctx, report)
}

// raGuard is doctor's line: the guard's flows are all on the bridge. Flows are lost
// when ovs-vswitchd restarts, until the next attach or the agent's start.
func (d *doctor) raGuard(ctx context.Context) {
	s := d.s
	sw, err := s.OVS(ctx)
	if err != nil {
		return // doctor's ovsdb line says it
	}
	missing, extra, err := s.guardOf(sw).Check(ctx)
	fix := "ovn-docker setup (or restart the agent; every container's attach puts it back too)"
	containers := 0
	if ports, perr := sw.Ports(ctx, s.cfg.Bridge); perr == nil {
		for _, p := range ports {
			if p.ExternalIDs[engine.ExtAttachment] != "" {
				containers++
			}
		}
	}
	switch {
	case err == nil && containers == 0 && len(extra) == 0 && len(missing) == len(raguard.Kinds)*3:
		// Nothing to guard yet, and no part of the guard in the way of the VM's own DHCP.
		d.ok("ra guard", fmt.Sprintf("not installed: no container on %s yet (the agent's start and the first attach install it)", s.cfg.Bridge))
	case err != nil:
		d.fail("ra guard", err, "check that ovs-vswitchd runs and serves "+s.cfg.Bridge+".mgmt in its run directory (--ovs-rundir; default: the --ovsdb socket's)")
	case len(missing) > 0:
		// A missing drop lets containers through; a missing exception (the uplink came
		// back with another port number) drops the real router's and DHCP servers' too.
		what := "the uplink's and the VM's exceptions are missing: the real router's advertisements and the DHCP servers' replies to the VM are dropped too"
		for _, f := range missing {
			if len(f.Output) == 0 {
				what = "containers' router advertisements, redirects and DHCP server replies are not dropped"
			}
		}
		d.fail("ra guard", fmt.Errorf("%d of %d flows missing on %s (first: %s): %s",
			len(missing), len(raguard.Kinds)*3, s.cfg.Bridge, missing[0], what), fix)
	case len(extra) > 0:
		d.fail("ra guard", fmt.Errorf("%d stale flow(s) of ovn-docker's cookie on %s (first: %s)", len(extra), s.cfg.Bridge, extra[0]), fix)
	default:
		d.ok("ra guard", fmt.Sprintf("%d flows on %s drop router advertisements, redirects and DHCP server replies from containers",
			len(raguard.Kinds)*3, s.cfg.Bridge))
	}
}
