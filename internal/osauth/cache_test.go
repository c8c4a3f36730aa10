package osauth

import (
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// TestCatalogHas: a cached token serves only while its catalog names Neutron where it is
// asked for; a region added since sends the run to Keystone for a fresh catalog.
func TestCatalogHas(t *testing.T) {
	cat := &tokens.ServiceCatalog{Entries: []tokens.CatalogEntry{{Type: "network", Endpoints: []tokens.Endpoint{
		{Interface: "public", Region: "RegionOne", RegionID: "RegionOne", URL: "http://192.0.2.1:9696/"},
	}}}}
	for _, c := range []struct {
		eo   gophercloud.EndpointOpts
		want bool
	}{
		{gophercloud.EndpointOpts{Region: "RegionOne", Availability: gophercloud.AvailabilityPublic}, true},
		{gophercloud.EndpointOpts{Availability: gophercloud.AvailabilityPublic}, true},
		{gophercloud.EndpointOpts{Region: "RegionTwo", Availability: gophercloud.AvailabilityPublic}, false},
		{gophercloud.EndpointOpts{Region: "RegionOne", Availability: gophercloud.AvailabilityInternal}, false},
	} {
		if got := catalogHas(cat, "network", c.eo); got != c.want {
			t.Errorf("%+v: got %v, want %v", c.eo, got, c.want)
		}
	}
}
