package service

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

// Each allowed address goes to the port of the network that holds it; one that no
// network holds goes to eth0's.
func TestForNetwork(t *testing.T) {
	n1 := &neutron.Network{ID: "n1", Subnets: []neutron.Subnet{{CIDR: netip.MustParsePrefix("10.1.0.0/24")}, {CIDR: netip.MustParsePrefix("fd00:1::/64")}}}
	n2 := &neutron.Network{ID: "n2", Subnets: []neutron.Subnet{{CIDR: netip.MustParsePrefix("10.2.0.0/24")}}}
	nets := []*neutron.Network{n1, n2}
	o := neutron.PortOptions{QoSPolicyID: "q", AllowedAddresses: []neutron.AddressPair{
		{IP: "10.1.0.50"}, {IP: "10.2.0.0/25", MAC: "fa:16:3e:00:00:01"}, {IP: "fd00:1::50"}, {IP: "192.168.9.9"}, {IP: "10.2.0.0/16"},
	}}
	got1, got2 := forNetwork(o, n1, true, nets), forNetwork(o, n2, false, nets)
	want1 := []neutron.AddressPair{{IP: "10.1.0.50"}, {IP: "fd00:1::50"}, {IP: "192.168.9.9"}, {IP: "10.2.0.0/16"}}
	want2 := []neutron.AddressPair{{IP: "10.2.0.0/25", MAC: "fa:16:3e:00:00:01"}}
	if !reflect.DeepEqual(got1.AllowedAddresses, want1) || got1.QoSPolicyID != "q" {
		t.Errorf("eth0: %+v, want pairs %+v", got1, want1)
	}
	if !reflect.DeepEqual(got2.AllowedAddresses, want2) || got2.QoSPolicyID != "q" {
		t.Errorf("eth1: %+v, want pairs %+v", got2, want2)
	}
	if len(o.AllowedAddresses) != 5 {
		t.Errorf("forNetwork changed its argument: %+v", o)
	}
}
