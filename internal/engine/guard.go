package engine

import (
	"context"
	"fmt"

	"github.com/ovn-docker/ovn-docker/internal/raguard"
)

// Guard keeps router advertisements, redirects and DHCP server replies sent by
// containers off the VM's bridge (see package raguard). Its flows do not survive an
// ovs-vswitchd restart, so it is made sure of before each container's plumbing.
type Guard interface {
	// Ensure installs what is missing; it says how many flow mods that took.
	Ensure(ctx context.Context) (int, error)
}

var _ Guard = (*raguard.Guard)(nil)

// guard makes sure of the bridge's guard; with none configured (tests) it does nothing.
// Nothing is plumbed without it: a container could otherwise act as a router.
func (e *Engine) guard(ctx context.Context) error {
	if e.cfg.Guard == nil {
		return nil
	}
	n, err := e.cfg.Guard.Ensure(ctx)
	if err != nil {
		return fmt.Errorf("ra guard on %s: %w", e.cfg.Bridge, err)
	}
	if n > 0 {
		e.log.Info("ra guard installed", "bridge", e.cfg.Bridge, "flow_mods", n)
	}
	return nil
}
