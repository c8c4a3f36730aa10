package testutil

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
)

// Provider authenticates as one of the stack's clouds ("admin", "tenant-a", "tenant-b").
func (s *Stack) Provider(t testing.TB, cloud string) (*gophercloud.ProviderClient, gophercloud.EndpointOpts) {
	t.Helper()
	ao, eo, tlsCfg, err := clouds.Parse(clouds.WithCloudName(cloud), clouds.WithLocations(s.CloudsFile()))
	if err != nil {
		t.Fatalf("clouds.yaml %s: %v", cloud, err)
	}
	ao.AllowReauth = true
	pc, err := config.NewProviderClient(context.Background(), ao, config.WithTLSConfig(tlsCfg))
	if err != nil {
		t.Fatalf("authenticate as %s: %v", cloud, err)
	}
	return pc, eo
}

// Network returns a Neutron client authenticated as the given cloud.
func (s *Stack) Network(t testing.TB, cloud string) *gophercloud.ServiceClient {
	t.Helper()
	pc, eo := s.Provider(t, cloud)
	c, err := openstack.NewNetworkV2(pc, eo)
	if err != nil {
		t.Fatalf("neutron endpoint for %s: %v", cloud, err)
	}
	return c
}
