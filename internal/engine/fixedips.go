package engine

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

// portAddresses is the fixed_ips of a port that must hold the addresses asked for
// (--ip, --ip6): each on the subnet of n that contains it, and, for each family of n
// that none of them covers, any address of its first subnet, so that a fixed IPv4
// address on a dual-stack network still gets its IPv6 one (Neutron allocates only what
// fixed_ips names once any is given). None asked: nil, Neutron's own choice.
func portAddresses(n *neutron.Network, want []netip.Addr) ([]neutron.FixedIPRequest, error) {
	if len(want) == 0 {
		return nil, nil
	}
	var out []neutron.FixedIPRequest
	covered := map[int]bool{}
	for _, ip := range want {
		ip = ip.Unmap()
		sub, ok := subnetFor(n, ip)
		if !ok {
			return nil, fmt.Errorf("address %s is in none of network %s's subnets (%s)", ip, n.Name, strings.Join(n.CIDRs(), ", "))
		}
		if covered[sub.IPVersion] {
			return nil, fmt.Errorf("two IPv%d addresses asked for one interface on network %s", sub.IPVersion, n.Name)
		}
		covered[sub.IPVersion] = true
		out = append(out, neutron.FixedIPRequest{SubnetID: sub.ID, IP: ip})
	}
	for _, s := range n.Subnets {
		if !covered[s.IPVersion] {
			covered[s.IPVersion] = true
			out = append(out, neutron.FixedIPRequest{SubnetID: s.ID})
		}
	}
	return out, nil
}

func subnetFor(n *neutron.Network, ip netip.Addr) (neutron.Subnet, bool) {
	for _, s := range n.Subnets {
		if s.CIDR.Contains(ip) {
			return s, true
		}
	}
	return neutron.Subnet{}, false
}

// addressesOf lists the addresses of fixed_ips asked for, for an error.
func addressesOf(fs []neutron.FixedIPRequest) string {
	var out []string
	for _, f := range fs {
		if f.IP.IsValid() {
			out = append(out, f.IP.String())
		}
	}
	return strings.Join(out, " and ")
}
