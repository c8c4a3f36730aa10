package service

import (
	"net/netip"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

func TestDockerNetworksCarryIPv6(t *testing.T) {
	v4 := neutron.Subnet{CIDR: netip.MustParsePrefix("10.1.0.0/24"), IPVersion: 4}
	v6 := neutron.Subnet{CIDR: netip.MustParsePrefix("fd00:1::/64"), IPVersion: 6}
	dual := &neutron.Network{Name: "dual", Subnets: []neutron.Subnet{v6, v4}}
	only4 := &neutron.Network{Name: "v4", Subnets: []neutron.Subnet{v4}}
	only6 := &neutron.Network{Name: "v6", Subnets: []neutron.Subnet{v6}}

	if !dockerCarries([]*neutron.Network{dual, only4}) || dockerCarries([]*neutron.Network{dual, only6}) {
		t.Fatal("an IPv6-only network must take the sandbox's way, the others Docker networks")
	}
	// A Docker network made before IPv6 came to run is not taken for a dual-stack one.
	if sameSubnets([]string{"10.1.0.0/24"}, dual) || !sameSubnets([]string{"fd00:1::/64", "10.1.0.0/24"}, dual) ||
		!sameSubnets([]string{"10.1.0.0/24"}, only4) {
		t.Fatal("sameSubnets")
	}
	a := &state.Attachment{IPs: []string{"10.1.0.5/24", "fd00:1::5/64"}}
	got := endpointFor(a, dual).IPAMConfig
	if got.IPv4Address != "10.1.0.5" || got.IPv6Address != "fd00:1::5" {
		t.Fatalf("dual stack: endpoint %+v", got)
	}
	if got := endpointFor(a, only4).IPAMConfig; got.IPv4Address != "10.1.0.5" || got.IPv6Address != "" {
		t.Fatalf("IPv4 only: endpoint %+v", got)
	}
}
