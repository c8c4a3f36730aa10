//go:build integration

package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

func identityClient(t *testing.T, pc *gophercloud.ProviderClient) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func networkNames(t *testing.T, nc *gophercloud.ServiceClient) map[string]bool {
	t.Helper()
	pages, err := networks.List(nc, networks.ListOpts{}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all, err := networks.ExtractNetworks(pages)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, n := range all {
		names[n.Name] = true
	}
	return names
}

// ensureTrunk returns the trunk whose parent is the port, creating it (and deleting it
// at the end of the test) when there is none.
func ensureTrunk(t *testing.T, nc *gophercloud.ServiceClient, portID string) string {
	t.Helper()
	ctx := context.Background()
	pages, err := trunks.List(nc, trunks.ListOpts{PortID: portID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	existing, err := trunks.ExtractTrunks(pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(existing) > 0 {
		return existing[0].ID
	}
	tr, err := trunks.Create(ctx, nc, trunks.CreateOpts{PortID: portID, Name: "smoke"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = trunks.Delete(ctx, nc, tr.ID).ExtractErr() })
	return tr.ID
}

func runQuiet(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// waitPing pings until one round of 3 pings all succeed (OVN programs a port it has
// just seen when it does), false once the test's time is up.
func waitPing(t *testing.T, netnsName, addr string) (bool, string) {
	ctx := testutil.Context(t)
	for {
		ok, out := testutil.Ping(netnsName, addr, 3)
		if ok {
			return ok, out
		}
		select {
		case <-ctx.Done():
			return ok, out
		case <-time.After(500 * time.Millisecond): // a rate: how often it tries again
		}
	}
}
