package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Verify compares an attached interface with the world, every part of it: the Neutron
// port (there, not disabled), the trunk's subport with the attachment's VLAN, the access
// port on the bridge with that tag, and the interface in its namespace (MAC, addresses,
// MTU). It returns one line per difference, none when all is as it was made (the CNI's
// CHECK). An error means a part could not be read, which proves nothing either way.
func (e *Engine) Verify(ctx context.Context, attID string) ([]string, error) {
	a, err := e.Attachment(ctx, attID)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return []string{fmt.Sprintf("attachment %s is gone", attID)}, nil
	}
	if a.Phase != state.PhaseAttached {
		return []string{fmt.Sprintf("attachment %s is %s, not attached", a.ID, a.Phase)}, nil
	}
	var drift []string
	add := func(format string, args ...any) { drift = append(drift, fmt.Sprintf(format, args...)) }

	p, err := e.cfg.Neutron.GetPort(ctx, a.PortID)
	switch {
	case errors.Is(err, neutron.ErrNotFound):
		add("Neutron port %s is gone", a.PortID)
	case err != nil:
		return nil, fmt.Errorf("Neutron port %s: %w", a.PortID, err)
	case p.AdminDown:
		// Said at once: Neutron may take minutes to report such a port's status DOWN.
		add("Neutron port %s is DOWN (administratively: admin_state_up is false)", a.PortID)
	}
	// Neutron's operational status is no drift: a subport's is the trunk driver's copy
	// of the parent's, set a while after add_subports, so a CHECK right after ADD found
	// a port the engine had just proven (OVN's DHCP or the gateway answered through it)
	// still DOWN. What the VM holds is compared below, part by part.

	if a.Mode == string(neutron.ModeTrunk) {
		t, err := e.cfg.Neutron.TrunkOf(ctx, e.cfg.VIFID)
		if err != nil {
			return nil, fmt.Errorf("the VM's trunk: %w", err)
		}
		var vlan int
		ok := false
		if t != nil {
			vlan, ok = t.Subports[a.PortID]
		}
		switch {
		case !ok:
			add("port %s is no longer a subport of the VM's trunk", a.PortID)
		case vlan != a.VLAN:
			add("subport %s has VLAN %d, not %d", a.PortID, vlan, a.VLAN)
		}
	}

	ports, err := e.cfg.Switch.Ports(ctx, e.cfg.Bridge)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", e.cfg.Bridge, err)
	}
	i := slices.IndexFunc(ports, func(p ovs.PortInfo) bool { return p.Name == a.HostIf })
	switch {
	case i < 0:
		add("access port %s is missing from bridge %s", a.HostIf, e.cfg.Bridge)
	case ports[i].Tag != a.VLAN:
		add("access port %s has tag %d, not %d", a.HostIf, ports[i].Tag, a.VLAN)
	}

	live, err := e.cfg.Links.Inspect(ctx, a.NetNS, a.IfName)
	switch {
	case errors.Is(err, netdev.ErrGone):
		add("%s is gone from %s", a.IfName, a.NetNS)
	case err != nil:
		return nil, err
	default:
		drift = append(drift, liveDrift(a, live)...)
	}
	return drift, nil
}

// liveDrift compares the interface in the namespace with its attachment.
func liveDrift(a *state.Attachment, live *netdev.Live) []string {
	var drift []string
	if !strings.EqualFold(live.MAC.String(), a.MAC) {
		drift = append(drift, fmt.Sprintf("%s has MAC %s, not %s", a.IfName, live.MAC, a.MAC))
	}
	if a.MTU != 0 && live.MTU != a.MTU {
		drift = append(drift, fmt.Sprintf("%s has MTU %d, not %d", a.IfName, live.MTU, a.MTU))
	}
	if !live.Up {
		drift = append(drift, fmt.Sprintf("%s is down", a.IfName))
	}
	for _, s := range a.IPs {
		want, err := netip.ParsePrefix(s)
		if err == nil && !slices.Contains(live.Addrs, want) {
			drift = append(drift, fmt.Sprintf("%s lacks its address %s", a.IfName, want))
		}
	}
	return drift
}
