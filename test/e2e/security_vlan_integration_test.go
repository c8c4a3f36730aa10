//go:build integration

package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// vmSNMP reads one counter of /proc/net/snmp in the VM's own network namespace.
func vmSNMP(t *testing.T, vm *testutil.VM, proto, field string) int {
	t.Helper()
	out := testutil.MustRun(t, "ip", "netns", "exec", vm.Name, "cat", "/proc/net/snmp")
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != proto+":" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, n := range names {
			if n == field && i+1 < len(f) {
				v, err := strconv.Atoi(f[i+1])
				if err == nil {
					return v
				}
			}
		}
	}
	t.Fatalf("%s: no %s %s in /proc/net/snmp", vm.Name, proto, field)
	return 0
}

// TestSecurityVLANHopping: a container that sends 802.1Q-tagged frames (raw, as any
// process with Docker's default NET_RAW may) with another container's VLAN as the tag,
// double-tagged, 802.1ad-tagged or priority-tagged, with ARP and ICMP inside, reaches
// nothing on the other network: not the container that owns that VLAN in the same VM,
// not a peer of that network in another VM (to which it pretends to be the owner), not
// the VM itself. The VM's access port drops tagged frames or keeps them in the
// attacker's VLAN, and the VM's own port on its bridge (a trunk of every VLAN) shows
// it: nothing of the attacker arrives there on another VLAN or untagged. (Frames the
// bridge floods do arrive there in the attacker's VLAN; the VM's kernel, with no
// interface on that VLAN, does not take them.) The hypervisor never sees the forged tag.
func TestSecurityVLANHopping(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	net1 := tenantNetwork(t, vm1, uniq("hop1"))
	net2 := tenantNetwork(t, vm1, uniq("hop2"))
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })

	bs := runBoxes(t,
		boxSpec{vm: vm1, name: "hopper", global: []string{"--network", net1}},
		boxSpec{vm: vm1, name: "victim", global: []string{"--network", net2}},
		boxSpec{vm: vm2, name: "peer1", global: []string{"--network", net1}},
		boxSpec{vm: vm2, name: "peer2", global: []string{"--network", net2}})
	att, vic, peer1, peer2 := bs[0], bs[1], bs[2], bs[3]
	if att.eth0.VLAN == vic.eth0.VLAN {
		t.Fatalf("two containers of %s share VLAN %d", vm1.Name, att.eth0.VLAN)
	}
	vmMAC, err := net.ParseMAC(vm1.Env["STACK_VM_MAC"])
	if err != nil {
		t.Fatalf("%s's MAC: %v", vm1.Name, err)
	}
	vmIP := netip.MustParseAddr(vm1.Env["STACK_VM_IP"])

	// Controls: each network carries packets; a raw frame from the attacker reaches its
	// own network's peer; a raw frame from the victim's own network reaches the victim,
	// so the victim's capture would show a frame that hopped.
	att.mustPing(t, peer1.ip().String())
	vic.mustPing(t, peer2.ip().String())
	tx := att.sender(t)
	rx1 := peer1.listen(t)
	ok := marker(t, "control")
	tx.send(t, ether(peer1.mac(), att.mac(), 0x0800, icmpEcho(att.ip(), peer1.ip(), 1, ok)))
	if !rx1.waitSeen(t, withMarker(ok)) {
		t.Fatalf("control: %s did not receive a raw frame from %s", peer1, att)
	}
	rxv := vic.listen(t)
	ok2 := marker(t, "control2")
	peer2.sender(t).send(t, ether(vic.mac(), peer2.mac(), 0x0800, icmpEcho(peer2.ip(), vic.ip(), 1, ok2)))
	if !rxv.waitSeen(t, withMarker(ok2)) {
		t.Fatalf("control: %s did not receive a raw frame from %s", vic, peer2)
	}
	rxv.stop()
	// The fences: the attacker's frames, paced and closed by its own broadcast (which
	// its own VLAN floods to its network's peer and to the VM's bridge port); then, on
	// the last hop of anything that hopped, the victim and its network's peer fence each
	// other, from a sender each.
	fenceAtt := att.queryFence(tx)
	txv, txp2 := vic.sender(t), peer2.sender(t)

	vv, va := vic.eth0.VLAN, att.eth0.VLAN
	m := marker(t, "hop")
	// echo is an ICMP echo request with the marker; who an ARP request followed by it.
	echo := func(dst, src net.HardwareAddr, sip, dip netip.Addr, seq int, tags ...tag) []byte {
		return ether(dst, src, 0x0800, icmpEcho(sip, dip, uint16(seq), m), tags...)
	}
	who := func(src net.HardwareAddr, sip, dip netip.Addr, tags ...tag) []byte {
		return ether(broadcast, src, 0x0806, append(arpPacket(1, src, sip, nil, dip), m...), tags...)
	}
	attacks := []struct {
		name   string
		frames [][]byte
	}{
		{fmt.Sprintf("tag %d (the victim's VLAN) to the victim", vv), [][]byte{
			echo(vic.mac(), att.mac(), att.ip(), vic.ip(), 1, dot1q(vv)),
			who(att.mac(), att.ip(), vic.ip(), dot1q(vv)),
		}},
		{fmt.Sprintf("tag %d, posing as the victim, to its network's peer", vv), [][]byte{
			echo(peer2.mac(), vic.mac(), vic.ip(), peer2.ip(), 2, dot1q(vv)),
			who(vic.mac(), vic.ip(), peer2.ip(), dot1q(vv)),
		}},
		{fmt.Sprintf("double tag %d/%d", va, vv), [][]byte{
			echo(vic.mac(), att.mac(), att.ip(), vic.ip(), 3, dot1q(va), dot1q(vv)),
			echo(peer2.mac(), vic.mac(), vic.ip(), peer2.ip(), 4, dot1q(va), dot1q(vv)),
			who(att.mac(), att.ip(), vic.ip(), dot1q(va), dot1q(vv)),
		}},
		{fmt.Sprintf("802.1ad tag %d", vv), [][]byte{
			echo(vic.mac(), att.mac(), att.ip(), vic.ip(), 5, tag{0x88a8, uint16(vv)}),
			echo(peer2.mac(), vic.mac(), vic.ip(), peer2.ip(), 6, tag{0x88a8, uint16(vv)}, dot1q(vv)),
		}},
		{"priority tag 0 and untagged, to the victim", [][]byte{
			echo(vic.mac(), att.mac(), att.ip(), vic.ip(), 7, dot1q(0)),
			echo(vic.mac(), att.mac(), att.ip(), vic.ip(), 8),
			who(att.mac(), att.ip(), vic.ip()),
		}},
		{"every tag 1-128", sweep(func(v int) [][]byte {
			return [][]byte{
				echo(vic.mac(), att.mac(), att.ip(), vic.ip(), 100+v, dot1q(v)),
				echo(peer2.mac(), vic.mac(), vic.ip(), peer2.ip(), 300+v, dot1q(v)),
			}
		}, 1, 128)},
		{"to the VM itself, untagged and tagged", [][]byte{
			echo(vmMAC, att.mac(), att.ip(), vmIP, 9),
			echo(vmMAC, att.mac(), att.ip(), vmIP, 10, dot1q(0)),
			echo(vmMAC, att.mac(), att.ip(), vmIP, 11, dot1q(va)),
			who(att.mac(), att.ip(), vmIP),
		}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			victims := []*box{vic, peer2}
			var caps []*capture
			var echos []int
			for _, v := range victims {
				caps = append(caps, v.listen(t))
				echos = append(echos, v.snmp(t, "Icmp", "InEchos"))
			}
			vmEchos := vmSNMP(t, vm1, "Icmp", "InEchos")
			// The VM's own port on its bridge carries every VLAN: what of the attacker
			// reaches it shows where the access port put the frames.
			onBridge := listenVM(t, vm1, "br0")
			tx.sendPaced(t, fenceAtt, rx1, a.frames...)
			fm := marker(t, "fence")
			tx.send(t, ether(broadcast, att.mac(), 0x0800, icmpTimestamp(att.ip(), peer1.ip(), fm)))
			if !rx1.waitSeen(t, withMarker(fm)) || !onBridge.waitSeen(t, withMarker(fm)) {
				t.Fatalf("%s's broadcast fence did not reach both %s and %s's bridge port: what did not arrive proves nothing", att, peer1, vm1.Name)
			}
			onBridge.stop()
			fence(t, peer2.queryFence(txp2), caps[0])
			fence(t, vic.queryFence(txv), caps[1])
			hopped := map[int]int{} // VLAN (-1: untagged) -> frames
			for _, f := range onBridge.seen(anyOf(withMarker(m), fromIdentity(att.mac(), att.ip()))) {
				if f.vlan != va {
					hopped[f.vlan]++
				}
			}
			if len(hopped) > 0 {
				t.Errorf("%s's own bridge port carried frames of the attacker outside its VLAN %d (VLAN: frames, -1 untagged): %v: the access port let them hop", vm1.Name, va, hopped)
			}
			if n := len(onBridge.seen(withMarker(m))); n > 0 && len(hopped) == 0 {
				t.Logf("%s's own port received %d of the attack's frames, all in the attacker's VLAN %d (flooded there: its kernel has no interface on that VLAN)", vm1.Name, n, va)
			}
			for i, v := range victims {
				if got := caps[i].seen(anyOf(withMarker(m), fromIdentity(att.mac(), att.ip()))); len(got) > 0 {
					t.Errorf("%s, on the other network, received %d frame(s) of the attacker: first %s", v, len(got), got[0])
				}
				if after := v.snmp(t, "Icmp", "InEchos"); after != echos[i] {
					t.Errorf("%s's kernel counted %d echo request(s) during the attack", v, after-echos[i])
				}
			}
			if after := vmSNMP(t, vm1, "Icmp", "InEchos"); after != vmEchos {
				t.Errorf("%s's own kernel counted %d echo request(s) during the attack", vm1.Name, after-vmEchos)
			}
		})
	}
	// The attacker's own port still works: the frames were dropped, the port not broken.
	att.mustPing(t, peer1.ip().String())
	vic.mustPing(t, peer2.ip().String())
}

func sweep(f func(v int) [][]byte, from, to int) [][]byte {
	var out [][]byte
	for v := from; v <= to; v++ {
		out = append(out, f(v)...)
	}
	return out
}
