//go:build integration

package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/ndp"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/probe"
	"github.com/ovn-docker/ovn-docker/internal/raguard"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestRAGuard: the VM's bridge drops, from a container's access port, router
// advertisements (also one behind a hop-by-hop extension header), redirects and DHCP
// server replies (v4 and v6), so that neither a peer in another VM nor a neighbour in
// the same VM receives them, while the container's own traffic passes. The guard is
// OpenFlow flows of ovn-docker's cookie on br0: deleted (as an ovs-vswitchd restart
// loses them), doctor says so and the same RA arrives again; the next attach puts them
// back, and doctor is green again.
func TestRAGuard(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	ls := tenantNetwork(t, vm1, uniq("ragd"), "--subnet", "10.152.0.0/24", "--ipv6-subnet", "fd00:152::/64")
	t.Cleanup(func() {
		cleanVM(t, vm1)
		cleanVM(t, vm2)
		assertClean(t, s, vm1)
		assertClean(t, s, vm2)
	})
	// The VM as ovs-vswitchd leaves it after a restart: none of the guard's flows. The
	// attaches put them in.
	mgmt := mgmtSocket(vm1)
	delGuard(t, mgmt)
	guardFlows(t, mgmt, 0)
	on := []string{"--network", ls}
	bs := runBoxes(t,
		boxSpec{vm: vm1, name: "rogue", global: on},
		boxSpec{vm: vm1, name: "nbr", global: on},
		boxSpec{vm: vm2, name: "peer", global: on})
	att, nbr, peer := bs[0], bs[1], bs[2]
	victims := []*box{peer, nbr}

	guardFlows(t, mgmt, 3*len(raguard.Kinds))
	if c := doctorCheck(t, vm1, "ra guard"); !c.OK {
		t.Fatalf("doctor's ra guard after the attaches: %s; fix: %s", c.Detail, c.Fix)
	}
	tx := att.sender(t)
	kinds := []string{"router advertisement", "router advertisement behind a hop-by-hop header", "redirect", "DHCPv6 reply", "DHCPv4 offer"}

	// attack sends each kind to each victim, then a fence: a query under the attacker's
	// own identity, sent last on the same path. Once the fence is in, anything sent before
	// it that was to arrive has arrived. It returns, per victim, the kinds that arrived.
	attack := func(t *testing.T, when string) map[*box][]string {
		t.Helper()
		got := map[*box][]string{}
		for _, v := range victims {
			rx := v.listen(t)
			ms := map[string][]byte{}
			for _, k := range kinds {
				ms[k] = marker(t, "raguard")
			}
			tx.send(t, rogueFrames(t, att, v, ms)...)
			fence(t, att.queryFence(tx), rx)
			for _, k := range kinds {
				if len(rx.seen(withMarker(ms[k]))) > 0 {
					got[v] = append(got[v], k)
				}
			}
			t.Logf("%s: %s received %v", when, v, got[v])
		}
		return got
	}
	mustDrop := func(t *testing.T, when string) {
		t.Helper()
		for v, ks := range attack(t, when) {
			t.Errorf("%s: %s received from %s: %v", when, v, att, ks)
		}
		for _, v := range victims {
			att.mustPing(t, ip6Of(t, v).String())
			att.mustPing(t, v.ip().String())
		}
	}

	mustDrop(t, "guard in place")

	// The flows go, as they do when ovs-vswitchd restarts.
	delGuard(t, mgmt)
	guardFlows(t, mgmt, 0)
	c := doctorCheck(t, vm1, "ra guard")
	if c.OK || !strings.Contains(c.Detail, "missing") || !strings.Contains(c.Fix, "ovn-docker setup") {
		t.Fatalf("doctor's ra guard without the flows: ok %v, %q, fix %q", c.OK, c.Detail, c.Fix)
	}
	t.Logf("doctor without the flows: %s; fix: %s", c.Detail, c.Fix)
	// Without them the same frames reach the victims: the guard is what drops them. What
	// else passes is what OVN itself lets through.
	leaked := attack(t, "guard deleted")
	for _, v := range victims {
		if !strings.Contains(strings.Join(leaked[v], ","), "router advertisement") {
			t.Errorf("without the guard %s received no router advertisement: the test cannot tell", v)
		}
	}

	// The next attach puts the guard back before it plumbs anything.
	runBox(t, vm1, "next", on, nil)
	guardFlows(t, mgmt, 3*len(raguard.Kinds))
	if c := doctorCheck(t, vm1, "ra guard"); !c.OK {
		t.Fatalf("doctor's ra guard after the next attach: %s", c.Detail)
	}
	mustDrop(t, "guard put back by an attach")
}

// mgmtSocket is the OpenFlow socket of the VM's bridge.
func mgmtSocket(vm *testutil.VM) string {
	return filepath.Join(filepath.Dir(strings.TrimPrefix(vm.OVSDB(), "unix:")), vm.Env["OVN_DOCKER_BRIDGE"]+".mgmt")
}

func hexCookie() string { return fmt.Sprintf("%#x", raguard.Cookie) }

// delGuard deletes the guard's flows from the bridge, and them alone.
func delGuard(t *testing.T, mgmt string) {
	t.Helper()
	if out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "del-flows", "unix:"+mgmt,
		"cookie="+hexCookie()+"/-1").CombinedOutput(); err != nil {
		t.Fatalf("ovs-ofctl del-flows: %v: %s", err, out)
	}
}

// guardFlows checks, with ovs-ofctl, that the bridge has n flows of the guard's cookie.
func guardFlows(t *testing.T, mgmt string, n int) {
	t.Helper()
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", "unix:"+mgmt,
		"cookie="+hexCookie()+"/-1").CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl dump-flows: %v: %s", err, out)
	}
	if got := strings.Count(string(out), "cookie="); got != n {
		t.Fatalf("%d guard flows on the bridge, want %d:\n%s", got, n, out)
	}
}

// doctorCheck is one line of doctor in the VM.
func doctorCheck(t *testing.T, vm *testutil.VM, name string) api.Check {
	t.Helper()
	checks, _, r := doctorIn(t, vm, nil)
	c, ok := checks[name]
	if !ok {
		t.Fatalf("doctor has no %q line:\n%s", name, r)
	}
	return c
}

// rogueFrames are what only a router or a DHCP server may send, from the attacker to
// the victim (or to all nodes), each carrying its kind's marker.
func rogueFrames(t *testing.T, att, v *box, ms map[string][]byte) [][]byte {
	t.Helper()
	ll, vll := probe.LinkLocal(att.mac()), probe.LinkLocal(v.mac())
	allNodes := netip.MustParseAddr("ff02::1")
	allNodesMAC := net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	ra := func(m []byte) *ndp.RouterAdvertisement {
		return &ndp.RouterAdvertisement{CurrentHopLimit: 64, RouterLifetime: 30 * time.Minute, Options: []ndp.Option{
			&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: att.mac()},
			&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
				ValidLifetime: time.Hour, PreferredLifetime: time.Hour, Prefix: netip.MustParseAddr("fd00:bad:7::")},
			markerOption(m)}}
	}
	plain := ndpFrame(t, allNodesMAC, att.mac(), ll, allNodes, ra(ms["router advertisement"]))
	// The same RA behind a hop-by-hop options header (next header 0) holding a PadN.
	body, err := ndp.MarshalMessageChecksum(ra(ms["router advertisement behind a hop-by-hop header"]), ll, allNodes)
	if err != nil {
		t.Fatal(err)
	}
	hbh := append([]byte{58, 0, 1, 4, 0, 0, 0, 0}, body...)
	hidden := ether(allNodesMAC, att.mac(), 0x86dd, ipv6Packet(ll, allNodes, 0, 255, hbh))

	// A redirect (137) telling the victim to reach the peer's address through the attacker.
	rd := []byte{137, 0, 0, 0, 0, 0, 0, 0}
	tgt, dst := ll.As16(), netip.MustParseAddr("fd00:152::99").As16()
	rd = append(append(append(rd, tgt[:]...), dst[:]...), rawOpt(ms["redirect"])...)
	binary.BigEndian.PutUint16(rd[2:], icmp6Checksum(ll, vll, rd))
	redirect := ether(v.mac(), att.mac(), 0x86dd, ipv6Packet(ll, vll, 58, 255, rd))

	dhcp6 := dhcp6Answer(att.mac(), v.mac(), ll, vll, 7, ms["DHCPv6 reply"])
	return [][]byte{plain, hidden, redirect, dhcp6, dhcp4Offer(att, ms["DHCPv4 offer"])}
}

// markerOption is an NDP option of an unassigned type carrying m, padded to 8 bytes.
func markerOption(m []byte) *ndp.RawOption {
	v := rawOpt(m)
	return &ndp.RawOption{Type: v[0], Length: v[1], Value: v[2:]}
}

func rawOpt(m []byte) []byte {
	n := (2 + len(m) + 7) / 8 * 8
	b := make([]byte, n)
	b[0], b[1] = 253, byte(n/8) // 253: for experiments (RFC 4727)
	copy(b[2:], m)
	return b
}

func icmp6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	s, d := src.As16(), dst.As16()
	ph := append(append(append([]byte{}, s[:]...), d[:]...), 0, 0, byte(len(msg)>>8), byte(len(msg)), 0, 0, 0, 58)
	return checksum(append(ph, msg...))
}

// dhcp4Offer is a DHCPOFFER-like BOOTP reply from the attacker's address, UDP 67 to 68,
// broadcast, carrying m.
func dhcp4Offer(att *box, m []byte) []byte {
	bootp := make([]byte, 236)
	bootp[0], bootp[1], bootp[2] = 2, 1, 6 // reply, Ethernet
	copy(bootp[28:], att.mac())
	bootp = append(append(bootp, 99, 130, 83, 99), m...) // magic cookie, then the marker
	udp := make([]byte, 8, 8+len(bootp))
	binary.BigEndian.PutUint16(udp[0:], 67)
	binary.BigEndian.PutUint16(udp[2:], 68)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(bootp)))
	udp = append(udp, bootp...)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	ip[8], ip[9] = 64, 17
	s4 := att.ip().As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], []byte{255, 255, 255, 255})
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return ether(broadcast, att.mac(), 0x0800, append(ip, udp...))
}

// TestRAGuardAgent: with the agent, the guard is in place as soon as it serves, a
// container the Docker plugin attaches puts it back after it was lost, and when the
// uplink is re-added (another OpenFlow port number) the agent moves the guard's
// exceptions to it by itself, with no attach: the VM's own DHCP replies and the real
// router's RAs keep passing.
func TestRAGuardAgent(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	mgmt := mgmtSocket(vm)
	delGuard(t, mgmt)
	d := startPlugin(t, vm)
	t.Cleanup(func() { cleanVM(t, vm); assertClean(t, s, vm) })
	guardFlows(t, mgmt, 3*len(raguard.Kinds))

	delGuard(t, mgmt)
	ls := uniq("ragdp")
	pluginNetwork(t, vm, ls)
	runIn(t, vm, uniq("ragdc"), "--network", ls, "busybox:local", "sleep", "600")
	guardFlows(t, mgmt, 3*len(raguard.Kinds))

	before := strings.TrimSpace(vm.VSCtl(t, "get", "Interface", "eth0", "ofport"))
	reports := logLines(d.log, "ra guard installed")
	t.Cleanup(func() { _, _ = vm.Try("ovs-vsctl", "--db="+vm.OVSDB(), "--may-exist", "add-port", "br0", "eth0") })
	vm.VSCtl(t, "del-port", "br0", "eth0")
	vm.VSCtl(t, "add-port", "br0", "eth0")
	after := strings.TrimSpace(vm.VSCtl(t, "get", "Interface", "eth0", "ofport"))
	if after == before {
		t.Fatalf("eth0 came back as port %s again: the test cannot tell", after)
	}
	// The agent's report of the move is the event waited on.
	waitLogLine(t, d.log, "ra guard installed", reports+1)
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", "unix:"+mgmt, "in_port="+after).CombinedOutput()
	if err != nil || strings.Count(string(out), "cookie="+hexCookie()) != len(raguard.Kinds) {
		t.Fatalf("the guard's exceptions for the uplink's new port %s (was %s): %v\n%s", after, before, err, out)
	}
	guardFlows(t, mgmt, 3*len(raguard.Kinds)) // the old port's are gone
	if c := doctorCheck(t, vm, "ra guard"); !c.OK {
		t.Fatalf("doctor's ra guard after the uplink moved: %s", c.Detail)
	}
	t.Logf("uplink eth0 moved from port %s to %s; the agent moved the guard's exceptions", before, after)
}

func logLines(path, s string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), s)
}

// waitLogLine waits until the daemon's log has n lines containing s, bounded by the
// test's own time, not a clock of its own (the agent's watch answers when it answers).
func waitLogLine(t *testing.T, path, s string, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d lines with %q in the daemon's log", n, s), func() (bool, string) {
		got := logLines(path, s)
		return got >= n, fmt.Sprintf("%d lines", got)
	})
}
