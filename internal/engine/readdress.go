package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Readdress gives an attachment at rest (not in a container: prepared, or ready with its
// pair in the VM) the address want in place of its address of that family, on its
// Neutron port: Docker asks a dual-stack network's IPv6 address (--ip6) only after the
// port was made for the IPv4 one. A ready attachment's data path is proven again, with
// the port's new addresses.
func (e *Engine) Readdress(ctx context.Context, attID string, n *neutron.Network, want netip.Addr) (*state.Attachment, error) {
	att, err := e.Attachment(ctx, attID)
	if err != nil {
		return nil, err
	}
	if att == nil {
		return nil, fmt.Errorf("no attachment %s", attID)
	}
	if att.NetNS != "" || (att.Phase != state.PhasePrepared && att.Phase != state.PhaseReady) {
		return nil, fmt.Errorf("attachment %s is %s: only one at rest can change its address", attID, att.Phase)
	}
	sub, ok := subnetFor(n, want)
	if !ok {
		return nil, fmt.Errorf("address %s is in none of network %s's subnets", want, n.Name)
	}
	p, err := e.cfg.Neutron.GetPort(ctx, att.PortID)
	if err != nil {
		return nil, err
	}
	fixed := []neutron.FixedIPRequest{{SubnetID: sub.ID, IP: want}}
	for _, f := range p.FixedIPs {
		if s, ok := n.SubnetByID(f.SubnetID); ok && s.IPVersion != sub.IPVersion {
			fixed = append(fixed, neutron.FixedIPRequest{SubnetID: f.SubnetID, IP: f.IP})
		}
	}
	np, err := e.cfg.Neutron.SetFixedIPs(ctx, att.PortID, fixed)
	if errors.Is(err, neutron.ErrAddressInUse) {
		return nil, fmt.Errorf("address %s is already in use on network %s: %w", want, n.Name, err)
	}
	if err != nil {
		return nil, err
	}
	if err := e.setPhase(ctx, att, att.Phase, func(a *state.Attachment) { fillFromPort(a, np, n) }); err != nil {
		return nil, err
	}
	if att.Phase == state.PhaseReady && att.PeerIf != "" {
		// OVN answers with the new address only once it has the port's new flows.
		if err := e.waitReady(ctx, att, "", att.PeerIf); err != nil {
			return nil, err
		}
	}
	e.log.Info("readdressed", "attachment", att.ID, "port", att.PortID, "ips", att.IPs)
	return att, nil
}
