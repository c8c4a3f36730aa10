package dockerplugin

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
)

// NeutronAPI is the plugin's Neutron: the neutron package's client, plus the few calls
// only the plugin makes.
type NeutronAPI struct {
	*neutron.Client
}

// FindSubnet finds a subnet by ID, or by name when id is empty.
func (c NeutronAPI) FindSubnet(ctx context.Context, id, name string) (string, string, error) {
	sc := c.ServiceClient()
	if id != "" {
		s, err := subnets.Get(ctx, sc, id).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return "", "", fmt.Errorf("subnet %s: %w (or not visible to this project)", id, neutron.ErrNotFound)
		}
		if err != nil {
			return "", "", fmt.Errorf("get subnet %s: %w", id, err)
		}
		return s.NetworkID, s.ID, nil
	}
	pages, err := subnets.List(sc, subnets.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return "", "", fmt.Errorf("find subnet %q: %w", name, err)
	}
	all, err := subnets.ExtractSubnets(pages)
	if err != nil {
		return "", "", fmt.Errorf("find subnet %q: %w", name, err)
	}
	switch len(all) {
	case 0:
		return "", "", fmt.Errorf("subnet %q: %w (or not visible to this project)", name, neutron.ErrNotFound)
	case 1:
		return all[0].NetworkID, all[0].ID, nil
	}
	ids := make([]string, len(all))
	for i, s := range all {
		ids[i] = s.ID
	}
	sort.Strings(ids)
	return "", "", fmt.Errorf("subnet name %q is ambiguous: %d subnets carry it (%v); use %s", name, len(all), ids, OptSubnetID)
}

// RenameNetwork gives a network a new name.
func (c NeutronAPI) RenameNetwork(ctx context.Context, id, name string) error {
	if _, err := networks.Update(ctx, c.ServiceClient(), id, networks.UpdateOpts{Name: &name}).Extract(); err != nil {
		return fmt.Errorf("rename network %s to %q: %w", id, name, err)
	}
	return nil
}

// TagNetwork replaces a network's tags.
func (c NeutronAPI) TagNetwork(ctx context.Context, id string, tags []string) error {
	sorted := append([]string(nil), tags...)
	sort.Strings(sorted)
	if _, err := attributestags.ReplaceAll(ctx, c.ServiceClient(), "networks", id, attributestags.ReplaceAllOpts{Tags: sorted}).Extract(); err != nil {
		return fmt.Errorf("tag network %s: %w", id, err)
	}
	return nil
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
