package neutron

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// Neighbor is another port of a network, as much of it as a readiness proof needs: OVN's
// logical switch answers ARP and neighbor solicitations for its addresses.
type Neighbor struct {
	PortID      string
	IPs         []netip.Addr
	DeviceOwner string
	// Active: Neutron has the port ACTIVE (up in OVN), which a deployment with NB_Global
	// options:ignore_lsp_down=false needs before OVN answers for its addresses.
	Active bool
	// PortSecurity false: OVN lists the port's addresses with "unknown", and its switch
	// then answers no ARP or NS for them.
	PortSecurity bool
}

// neighborFields are the only fields asked for: a network may hold many ports.
var neighborFields = []string{"id", "fixed_ips", "device_owner", "status", "port_security_enabled"}

// neighborOpts adds fields= to a port list (gophercloud's ListOpts has no such field).
type neighborOpts struct{ ports.ListOpts }

func (o neighborOpts) ToPortListQuery() (string, error) {
	q, err := o.ListOpts.ToPortListQuery()
	if err != nil {
		return "", err
	}
	v, err := url.ParseQuery(strings.TrimPrefix(q, "?"))
	if err != nil {
		return "", err
	}
	v["fields"] = neighborFields
	return "?" + v.Encode(), nil
}

// Neighbors lists up to limit enabled ports of the network. Not only ACTIVE ones: a
// subport's status can lag minutes behind OVN under load, and OVN answers for a port
// that is down unless the deployment says otherwise. One call, one page: whatever is
// beyond limit is not read.
func (c *Client) Neighbors(ctx context.Context, networkID string, limit int) ([]Neighbor, error) {
	up := true
	opts := neighborOpts{ports.ListOpts{NetworkID: networkID, AdminStateUp: &up, Limit: limit}}
	var raw []struct {
		ID       string `json:"id"`
		FixedIPs []struct {
			IPAddress string `json:"ip_address"`
		} `json:"fixed_ips"`
		DeviceOwner  string `json:"device_owner"`
		Status       string `json:"status"`
		PortSecurity *bool  `json:"port_security_enabled"`
	}
	err := ports.List(c.sc, opts).EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
		return false, ports.ExtractPortsInto(page, &raw)
	})
	if err != nil {
		return nil, wrap(err, "list the ports of network %s", networkID)
	}
	out := make([]Neighbor, 0, len(raw))
	for _, r := range raw {
		n := Neighbor{PortID: r.ID, DeviceOwner: r.DeviceOwner, Active: r.Status == "ACTIVE", PortSecurity: r.PortSecurity == nil || *r.PortSecurity}
		for _, f := range r.FixedIPs {
			ip, err := netip.ParseAddr(f.IPAddress)
			if err != nil {
				return nil, fmt.Errorf("port %s: neutron gave address %q: %w", r.ID, f.IPAddress, err)
			}
			n.IPs = append(n.IPs, ip)
		}
		out = append(out, n)
	}
	return out, nil
}
