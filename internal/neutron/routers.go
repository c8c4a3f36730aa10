package neutron

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
)

// RouterPortAt finds the router interface port that holds ip on the network (a subnet's
// gateway on a Neutron router): its address is what OVN's logical switch answers ARP and
// neighbor solicitations for. None is ErrNotFound. One call; Neutron cannot filter on a
// prefix of device_owner (router_interface, _distributed, ...), so that is checked here.
func (c *Client) RouterPortAt(ctx context.Context, networkID string, ip netip.Addr) (*Port, error) {
	ps, err := c.listPorts(ctx, ports.ListOpts{NetworkID: networkID, FixedIPs: []ports.FixedIPOpts{{IPAddress: ip.String()}}})
	if err != nil {
		return nil, err
	}
	for i, p := range ps {
		if strings.HasPrefix(p.DeviceOwner, "network:router_interface") {
			return &ps[i], nil
		}
	}
	return nil, fmt.Errorf("router port at %s on network %s: %w", ip, networkID, ErrNotFound)
}
