//go:build integration

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestReadyThroughOVNsResponder: on a network where neither DHCP nor a router answers
// (IPv4 and static IPv6 with DHCP off, SLAAC without a router), the first container's
// path cannot be proven, and the log says that nothing else on the network could answer;
// the second one, in another VM, is proven by OVN's own ARP/ND responder answering for
// the first one's address, and its first command reaches the first one over each family.
func TestReadyThroughOVNsResponder(t *testing.T) {
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })

	nets := []struct {
		label string
		args  []string
		v4    bool
	}{
		{"static", []string{"--subnet", "10.153.0.0/24", "--ipv6-subnet", "fd00:153::/64", "--ipv6-address-mode", "none", "--no-dhcp"}, true},
		{"slaac", []string{"--ipv4=false", "--ipv6-subnet", "fd00:154::/64", "--ipv6-address-mode", "slaac"}, false},
	}
	for _, n := range nets {
		name := tenantNetwork(t, vm1, uniq("peer"+n.label), n.args...)

		// The first container: nothing else on the network, so nothing to answer.
		first := "peer1-" + n.label
		res := ovnDocker(t, vm1, nil, "--log-level", "info", "--network", name, "run", "-d", "--name", first, "busybox:local", "sleep", "3600")
		if res.code != 0 {
			t.Fatalf("%s: first container: %s", n.label, res)
		}
		line := proofLine(res.stderr)
		if !strings.Contains(line, "nothing else on the network to answer") {
			t.Errorf("%s: first container's proof line %q, want nothing else on the network to answer", n.label, line)
		}
		t.Logf("%s, first: %s", n.label, line)
		peer := &box{vm: vm1, name: first, eth0: entryOf(t, vm1, first, "eth0")}

		// No wait for Neutron to have the first port ACTIVE (a subport's status can lag
		// minutes behind OVN here): OVN answers for a port that is down all the same.
		want := []string{"neighbor advertisement from OVN for " + addrOf(t, peer, true) + " (port " + peer.eth0.Port}
		cmd := "ping -6 -c 1 -W 2 " + addrOf(t, peer, true)
		if n.v4 {
			want = append(want, "ARP reply from OVN for "+addrOf(t, peer, false)+" (port "+peer.eth0.Port)
			cmd += " && ping -c 1 -W 2 " + addrOf(t, peer, false)
		}
		// The second container's very first action, in the other VM.
		res = ovnDocker(t, vm2, nil, "--log-level", "info", "--network", name, "run", "--rm", "busybox:local", "sh", "-c", cmd)
		line = proofLine(res.stderr)
		for _, w := range want {
			if !strings.Contains(line, w) || strings.Contains(res.stderr, "not proven") {
				t.Errorf("%s: second container's proof line %q, want %q", n.label, line, w)
			}
		}
		if res.code != 0 || strings.Count(res.stdout, "1 packets received") != len(want) {
			t.Fatalf("%s: first-action ping to %s failed: %s", n.label, peer, res)
		}
		t.Logf("%s, second: %s (proof to attached: %s)", n.label, line, logGap(t, res.stderr, "data path proof", "msg=attached"))
		mustOVNDocker(t, vm1, "rm", "-f", first)
	}
	assertClean(t, s, vm1)
	assertClean(t, s, vm2)
}

// proofLine is the last "data path proof" line of a log.
func proofLine(log string) string {
	var line string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "data path proof") {
			line = l
		}
	}
	return line
}

// logGap is the time between the first log lines holding from and to.
func logGap(t *testing.T, log, from, to string) time.Duration {
	t.Helper()
	at := func(what string) time.Time {
		for _, l := range strings.Split(log, "\n") {
			if !strings.Contains(l, what) {
				continue
			}
			ts, _, _ := strings.Cut(strings.TrimPrefix(l, "time="), " ")
			if tm, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				return tm
			}
		}
		t.Fatalf("no log line with %q in:\n%s", what, log)
		return time.Time{}
	}
	return at(to).Sub(at(from))
}

// TestReadyThroughADownPort: OVN (NB_Global ignore_lsp_down unset: true) answers for a
// port that nothing has bound, DOWN in Neutron; the proof through it says so.
func TestReadyThroughADownPort(t *testing.T) {
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	nc := s.Network(t, "tenant-a")
	ctx := context.Background()
	t.Cleanup(func() { cleanVM(t, vm) })
	name := tenantNetwork(t, vm, uniq("peerdown"), "--subnet", "10.155.0.0/24", "--ipv6-subnet", "fd00:155::/64", "--ipv6-address-mode", "none", "--no-dhcp")
	p, err := ports.Create(ctx, nc, ports.CreateOpts{NetworkID: networkID(t, nc, name), Name: uniq("unbound"), DeviceOwner: "compute:nova"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ports.Delete(ctx, nc, p.ID).ExtractErr(); err != nil {
			t.Errorf("delete port %s: %v", p.ID, err)
		}
	})
	if p.Status == "ACTIVE" || len(p.FixedIPs) != 2 {
		t.Fatalf("port %+v: want DOWN, with an address of each family", p)
	}
	res := ovnDocker(t, vm, nil, "--log-level", "info", "--network", name, "run", "--rm", "busybox:local", "true")
	line := proofLine(res.stderr)
	for _, f := range p.FixedIPs {
		w := "ARP reply from OVN for " + f.IPAddress + " (port " + p.ID + ", DOWN in Neutron)"
		if strings.Contains(f.IPAddress, ":") {
			w = "neighbor advertisement from OVN for " + f.IPAddress + " (port " + p.ID + ", DOWN in Neutron)"
		}
		if !strings.Contains(line, w) {
			t.Errorf("proof line %q, want %q", line, w)
		}
	}
	if res.code != 0 || strings.Contains(res.stderr, "not proven") {
		t.Fatalf("run: %s", res)
	}
	t.Logf("%s (proof to attached: %s)", line, logGap(t, res.stderr, "data path proof", "msg=attached"))
	assertClean(t, s, vm)
}
