package vmsetup

import (
	"context"
	"fmt"

	"github.com/ovn-docker/ovn-docker/internal/resolved"
)

// DNS is systemd-resolved, as setup uses it: the uplink's servers and domains go to the
// bridge with its addresses (resolved uses a link's servers only while the link holds an
// address).
type DNS interface {
	Link(ctx context.Context, ifindex int) (resolved.Link, error)
	SetLink(ctx context.Context, ifindex int, l resolved.Link) error
	Revert(ctx context.Context, ifindex int) error
}

var _ DNS = (*resolved.Client)(nil)

// lookDNS reads the uplink's DNS and the bridge's, when resolved runs.
func lookDNS(ctx context.Context, c Config, s *snapshot, bridgeIndex int) error {
	if c.DNS == nil {
		return nil
	}
	var err error
	if s.uplinkDNS, err = c.DNS.Link(ctx, s.uplink.Attrs().Index); err != nil {
		return err
	}
	if bridgeIndex > 0 {
		if s.bridgeDNS, err = c.DNS.Link(ctx, bridgeIndex); err != nil {
			return err
		}
	}
	return nil
}

// dnsMoved: the bridge has the uplink's DNS, or there is none to move.
func dnsMoved(s *snapshot) bool {
	return s.uplinkDNS.Empty() || s.uplinkDNS.Equal(s.bridgeDNS)
}

// dnsStep gives the bridge the uplink's DNS; undone, the bridge has what it had.
func dnsStep(c Config, s *snapshot, bridgeIndex func() int) step {
	return step{
		what: fmt.Sprintf("give %s the DNS of %s in systemd-resolved (%s)", c.Bridge, c.Uplink, s.uplinkDNS),
		do:   func(ctx context.Context) error { return c.DNS.SetLink(ctx, bridgeIndex(), s.uplinkDNS) },
		undo: func(ctx context.Context) error {
			if s.bridgeDNS.Empty() {
				return c.DNS.Revert(ctx, bridgeIndex())
			}
			return c.DNS.SetLink(ctx, bridgeIndex(), s.bridgeDNS)
		},
	}
}
