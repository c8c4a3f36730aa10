package service

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

func TestVMPortCache(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	mac, _ := net.ParseMAC("fa:16:3e:00:00:01")
	if _, ok := cachedVMPort(dir, "proj-a", "vif1", nil, now); ok {
		t.Fatal("a hit with nothing saved")
	}
	saveVMPort(dir, vmPortFacts{VIFID: "vif1", CredProject: "proj-a", Project: "proj-a", MAC: mac.String(), TrunkID: "trunk1", Checked: now})
	if fi, err := os.Stat(filepath.Join(dir, vmPortFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v, %v", fi, err)
	}
	for _, c := range []struct {
		name, proj, vif string
		mac             net.HardwareAddr
		at              time.Time
		hit             bool
	}{
		{"same credentials and port", "proj-a", "vif1", nil, now.Add(time.Minute), true},
		{"found by the uplink's MAC", "proj-a", "", mac, now, true},
		{"another project's credentials ask Neutron", "proj-b", "vif1", nil, now, false},
		{"credentials of unknown project", "", "vif1", nil, now, false},
		{"another port", "proj-a", "vif2", nil, now, false},
		{"another MAC", "proj-a", "", net.HardwareAddr{2, 0, 0, 0, 0, 1}, now, false},
		{"no vif-id and no MAC", "proj-a", "", nil, now, false},
		{"too old", "proj-a", "vif1", nil, now.Add(vmPortTTL + time.Second), false},
		{"from the future", "proj-a", "vif1", nil, now.Add(-time.Hour), false},
	} {
		f, ok := cachedVMPort(dir, c.proj, c.vif, c.mac, c.at)
		if ok != c.hit {
			t.Errorf("%s: hit %v, want %v", c.name, ok, c.hit)
			continue
		}
		if ok && (f.TrunkID != "trunk1" || f.port().ID != "vif1" || f.port().ProjectID != "proj-a" || f.port().MAC.String() != mac.String()) {
			t.Errorf("%s: got %+v", c.name, f)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, vmPortFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := cachedVMPort(dir, "proj-a", "vif1", nil, now); ok {
		t.Fatal("a hit from a corrupt file")
	}
}

func TestNetworkCache(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	n := &neutron.Network{ID: "net-1", Name: "LS1", MTU: 1442, ProjectID: "proj-a",
		Subnets: []neutron.Subnet{{ID: "sub-1", CIDR: netip.MustParsePrefix("10.0.5.0/24"), Gateway: netip.MustParseAddr("10.0.5.1"), IPVersion: 4, DHCP: true}}}
	keepNetwork(dir, "proj-a", "LS1", n, now)
	got, ok := cachedNetworkNamed(dir, "proj-a", "LS1", now.Add(30*time.Second))
	if !ok || !reflect.DeepEqual(got, n) {
		t.Fatalf("got %+v %v, want %+v", got, ok, n)
	}
	if fi, err := os.Stat(filepath.Join(dir, networksFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v, %v", fi, err)
	}
	for _, c := range []struct {
		name, proj, net string
		at              time.Time
	}{
		{"another project's credentials", "proj-b", "LS1", now},
		{"credentials of unknown project", "", "LS1", now},
		{"another name", "proj-a", "LS2", now},
		{"too old", "proj-a", "LS1", now.Add(networkTTL + time.Second)},
	} {
		if _, ok := cachedNetworkNamed(dir, c.proj, c.net, c.at); ok {
			t.Errorf("%s: a hit", c.name)
		}
	}
	// Forgotten (deleted, or gone from Neutron), it is asked for again.
	keepNetwork(dir, "proj-a", "LS1", nil, now)
	if _, ok := cachedNetworkNamed(dir, "proj-a", "LS1", now); ok {
		t.Fatal("a hit after forgetting")
	}
	// Old entries leave the file when it is written.
	keepNetwork(dir, "proj-a", "LS1", n, now)
	keepNetwork(dir, "proj-a", "LS2", n, now.Add(2*networkTTL))
	if all := readNetworks(dir); len(all) != 1 {
		t.Fatalf("%d entries, want the fresh one", len(all))
	}
}
