package cli

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
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
