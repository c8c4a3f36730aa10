package neutron

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// Refusals of a port's fixed_ips, told apart with errors.Is.
var (
	// ErrAddressInUse: the address asked for is another port's (409
	// IpAddressAlreadyAllocated from Neutron's IPAM, IpAddressInUse from its core).
	ErrAddressInUse = errors.New("address already in use")
	// ErrAddressInvalid: the address is in none of the network's subnets, or is one
	// Neutron keeps (the network's or the gateway's): 400 InvalidIpForNetwork/Subnet.
	ErrAddressInvalid = errors.New("address not usable on the network")
)

// FixedIPRequest asks Neutron for one address of a new port: IP on its subnet, or (IP unset)
// any free address of SubnetID.
type FixedIPRequest struct {
	SubnetID string
	IP       netip.Addr
}

func (f FixedIPRequest) String() string {
	if f.IP.IsValid() {
		return f.IP.String()
	}
	return "any of subnet " + f.SubnetID
}

// fixedIPsOpt is the fixed_ips of a port request; nil (Neutron's choice) when none is asked.
func fixedIPsOpt(fs []FixedIPRequest) any {
	if len(fs) == 0 {
		return nil
	}
	out := make([]ports.IP, 0, len(fs))
	for _, f := range fs {
		ip := ports.IP{SubnetID: f.SubnetID}
		if f.IP.IsValid() {
			ip.IPAddress = f.IP.String()
		}
		out = append(out, ip)
	}
	return out
}

// addressesAsked lists the addresses of a request, for its error.
func addressesAsked(fs []FixedIPRequest) string {
	var out []string
	for _, f := range fs {
		if f.IP.IsValid() {
			out = append(out, f.IP.String())
		}
	}
	return strings.Join(out, ", ")
}

// portOp names a port creation in an error: with the addresses asked, when any.
func portOp(r PortRequest) string {
	if a := addressesAsked(r.FixedIPs); a != "" {
		return fmt.Sprintf("create port with address %s on network %s", a, r.NetworkID)
	}
	return "create port on network " + r.NetworkID
}

// UsedAddresses lists the addresses of every port on the network the credentials see:
// what a caller that picks an address itself must avoid.
func (c *Client) UsedAddresses(ctx context.Context, networkID string) (map[netip.Addr]bool, error) {
	ps, err := c.PortsOnNetwork(ctx, networkID)
	if err != nil {
		return nil, err
	}
	used := map[netip.Addr]bool{}
	for _, p := range ps {
		for _, f := range p.FixedIPs {
			used[f.IP] = true
		}
	}
	return used, nil
}

// PoolRange is one allocation pool of a subnet: the addresses Neutron hands out itself.
type PoolRange struct {
	Start netip.Addr `json:"start"`
	End   netip.Addr `json:"end"`
}

// Contains reports whether a lies in the range.
func (r PoolRange) Contains(a netip.Addr) bool {
	return r.Start.BitLen() == a.BitLen() && r.Start.Compare(a) <= 0 && a.Compare(r.End) <= 0
}

func poolRanges(ps []subnets.AllocationPool) []PoolRange {
	var out []PoolRange
	for _, p := range ps {
		a, err1 := netip.ParseAddr(p.Start)
		b, err2 := netip.ParseAddr(p.End)
		if err1 == nil && err2 == nil {
			out = append(out, PoolRange{Start: a, End: b})
		}
	}
	return out
}

// SetFixedIPs replaces a port's addresses; Neutron keeps an address named again, and
// answers with the port as it now is.
func (c *Client) SetFixedIPs(ctx context.Context, portID string, fs []FixedIPRequest) (*Port, error) {
	var p rawPort
	err := ports.Update(ctx, c.sc, portID, ports.UpdateOpts{FixedIPs: fixedIPsOpt(fs)}).ExtractInto(&p)
	if err != nil {
		return nil, wrap(err, "set the addresses of port %s to %s", portID, addressesAsked(fs))
	}
	return p.port()
}
