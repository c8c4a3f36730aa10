package docker

import (
	"testing"

	"github.com/docker/docker/api/types/network"
)

func TestNetworkFromInspect(t *testing.T) {
	n := networkFromInspect(network.Inspect{
		ID: "n1", Name: "LS1", Driver: "ovn",
		IPAM: network.IPAM{Driver: "ovn", Config: []network.IPAMConfig{{Subnet: "10.10.3.0/24", Gateway: "10.10.3.1"}}},
		Containers: map[string]network.EndpointResource{
			"c0ffee":   {Name: "web", EndpointID: "e2", IPv4Address: "10.10.3.7/24"},
			"ep-e1abc": {Name: "", EndpointID: "e1abc", IPv4Address: "10.10.3.9/24"},
		},
	})
	if n.ID != "n1" || n.Name != "LS1" || n.Driver != "ovn" || n.IPAMDriver != "ovn" || len(n.Subnets) != 1 || n.Subnets[0] != "10.10.3.0/24" {
		t.Fatalf("network %+v", n)
	}
	if len(n.Endpoints) != 2 {
		t.Fatalf("endpoints %+v", n.Endpoints)
	}
	// Sorted by endpoint ID; an endpoint no sandbox joined has no container.
	if e := n.Endpoints[0]; e.ID != "e1abc" || e.Container != "" || e.IPv4 != "10.10.3.9/24" {
		t.Fatalf("unjoined endpoint %+v", e)
	}
	if e := n.Endpoints[1]; e.ID != "e2" || e.Container != "c0ffee" || e.Name != "web" {
		t.Fatalf("joined endpoint %+v", e)
	}
}
