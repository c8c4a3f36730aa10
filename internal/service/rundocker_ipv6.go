package service

import (
	"net/netip"
	"slices"

	"github.com/docker/docker/api/types/network"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// IPv6 on the agent's Docker networks. A Docker network of the plugin carries one IPv4
// and at most one IPv6 subnet; the plugin's IPAM adopts both from the Neutron network
// (see dockerplugin/ipv6.go), so a dual-stack Neutron network is an --ipv6 Docker
// network with both subnets, and a run gives Docker both addresses of the reserved port.

// dockerSubnets are the subnets of n a Docker network of the plugin carries: its first
// IPv4 subnet, and its first IPv6 one when it has one (ok6).
func dockerSubnets(n *neutron.Network) (v4 neutron.Subnet, ok4 bool, v6 neutron.Subnet, ok6 bool) {
	v4, ok4 = n.FirstIPv4()
	for _, s := range n.Subnets {
		if s.IPVersion == 6 {
			return v4, ok4, s, true
		}
	}
	return v4, ok4, neutron.Subnet{}, false
}

// dockerCarries says whether Docker networks can carry every one of nets: Docker 20.10
// gives each network an IPv4 pool, so an IPv6-only Neutron network cannot be one
// (its containers take the sandbox's way, which needs no Docker network).
func dockerCarries(nets []*neutron.Network) bool {
	for _, n := range nets {
		if _, ok := n.FirstIPv4(); !ok {
			return false
		}
	}
	return true
}

// sameSubnets says whether a Docker network made before carries exactly the subnets it
// would be made with now: one made before IPv6 came to this path has none, and is not
// taken for a dual-stack network.
func sameSubnets(have []string, n *neutron.Network) bool {
	v4, _, v6, ok6 := dockerSubnets(n)
	want := []string{v4.CIDR.String()}
	if ok6 {
		want = append(want, v6.CIDR.String())
	}
	return slices.Equal(slices.Sorted(slices.Values(have)), slices.Sorted(slices.Values(want)))
}

// endpointFor is the endpoint setting that makes Docker's IPAM ask for exactly the
// reserved port's addresses, of each family the Docker network carries.
func endpointFor(a *state.Attachment, n *neutron.Network) *network.EndpointSettings {
	cfg := &network.EndpointIPAMConfig{IPv4Address: firstIPv4(a)}
	if _, _, v6, ok := dockerSubnets(n); ok {
		cfg.IPv6Address = addressIn(a, v6.CIDR)
	}
	return &network.EndpointSettings{IPAMConfig: cfg}
}

// addressIn is the attachment's address inside pfx, bare ("" for none).
func addressIn(a *state.Attachment, pfx netip.Prefix) string {
	for _, ip := range a.IPs {
		if p, err := netip.ParsePrefix(ip); err == nil && pfx.Contains(p.Addr()) {
			return p.Addr().String()
		}
	}
	return ""
}
