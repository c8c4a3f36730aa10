package dockerplugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
)

// NeutronAPI is the plugin's Neutron: the neutron package's client, with the plugin's
// own way of naming a subnet.
type NeutronAPI struct {
	*neutron.Client
}

// FindSubnet finds a subnet by ID, or by name when id is empty.
func (c NeutronAPI) FindSubnet(ctx context.Context, id, name string) (string, string, error) {
	s, err := c.Client.FindSubnet(ctx, neutron.FindSubnetOpts{ID: id, Name: name})
	if errors.Is(err, neutron.ErrAmbiguous) {
		return "", "", fmt.Errorf("%w; use %s", err, OptSubnetID)
	}
	if err != nil {
		return "", "", err
	}
	return s.NetworkID, s.ID, nil
}

// TagNetwork replaces a network's tags.
func (c NeutronAPI) TagNetwork(ctx context.Context, id string, tags []string) error {
	return c.SetNetworkTags(ctx, id, tags)
}

// PortLister lists a bridge's ports; *ovs.Client implements it.
type PortLister interface {
	Ports(ctx context.Context, bridge string) ([]ovs.PortInfo, error)
}

// VMHost is the real Host: links in the network namespace the daemon runs in (the VM's)
// and ports of the VM's bridge.
type VMHost struct {
	Switch PortLister
	Bridge string
}

// LinkExists reports whether the veth exists in the VM.
func (h VMHost) LinkExists(ctx context.Context, name string) (bool, error) {
	return netdev.Exists(ctx, name)
}

// PortExists reports whether the bridge has the port.
func (h VMHost) PortExists(ctx context.Context, name string) (bool, error) {
	ports, err := h.Switch.Ports(ctx, h.Bridge)
	if err != nil {
		return false, fmt.Errorf("ports of %s: %w", h.Bridge, err)
	}
	for _, p := range ports {
		if p.Name == name {
			return true, nil
		}
	}
	return false, nil
}
