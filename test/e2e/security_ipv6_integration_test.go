//go:build integration

package e2e

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"github.com/ovn-docker/ovn-docker/internal/probe"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestSecurityIPv6: on a dual-stack network, a container that sends raw IPv6 frames
// with a forged source address, router advertisements, DHCPv6 server answers to another
// container's Solicit, or neighbor advertisements claiming another container's address
// or its own with another MAC, reaches neither the peer in another VM nor the neighbour
// in its own VM: their captures see nothing of it, their kernels count no echo, their
// neighbor caches stay right. The same container under its own identity reaches them.
func TestSecurityIPv6(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	ls := tenantNetwork(t, vm1, uniq("sec6"), "--subnet", "10.151.0.0/24", "--ipv6-subnet", "fd00:151::/64")
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })

	on := []string{"--network", ls}
	bs := runBoxes(t,
		boxSpec{vm: vm1, name: "att6", global: on},
		boxSpec{vm: vm1, name: "nbr6", global: on},
		boxSpec{vm: vm2, name: "peer6", global: on})
	att, nbr, peer := bs[0], bs[1], bs[2]
	victims := []*box{peer, nbr}
	att6, nbr6 := ip6Of(t, att), ip6Of(t, nbr)
	for _, b := range bs {
		assertPortSecurity6(t, s, b)
	}
	tx := att.sender(t)

	// control sends an echo request under the attacker's own identity to each victim: the
	// victim's capture and its kernel's counter must see it, or "nothing arrived" means
	// nothing.
	control := func(t *testing.T, when string) {
		t.Helper()
		for _, v := range victims {
			if ok, out := att.pings(ip6Of(t, v).String(), "-6"); !ok {
				t.Fatalf("control %s: %s cannot ping -6 %s:\n%s", when, att, v, out)
			}
			rx := v.listen(t)
			m := marker(t, "control6")
			before := v.snmp6(t, "Icmp6InEchos")
			tx.send(t, ether(v.mac(), att.mac(), 0x86dd, echo6(att6, ip6Of(t, v), m)))
			if !rx.waitSeen(t, withMarker(m)) {
				t.Fatalf("control %s: %s did not receive a raw ICMPv6 echo from %s", when, v, att)
			}
			fence(t, att.queryFence(tx), rx) // its kernel has taken the echo too
			if after := v.snmp6(t, "Icmp6InEchos"); after <= before {
				t.Fatalf("control %s: %s's kernel counted no ICMPv6 echo (%d -> %d)", when, v, before, after)
			}
		}
	}
	control(t, "before")
	// The victims know each other's and the attacker's addresses: a poisoning would show.
	for _, v := range victims {
		for _, o := range []*box{att, nbr, peer} {
			if o != v {
				v.mustExec(t, "ping", "-6", "-c", "1", "-W", "2", ip6Of(t, o).String())
			}
		}
	}

	free := freeAddr6(t, netip.MustParsePrefix(ipv6CIDR(t, att)).Masked(), bs...)
	fakeMAC := strangerMAC(0x61)
	allNodes := netip.MustParseAddr("ff02::1")
	allNodesMAC := net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
	rogue := netip.MustParsePrefix("fd00:bad:6::/64")

	for _, tc := range []struct {
		name string
		// frames are the attack, sent to each victim; leaked says what must not arrive.
		frames func(t *testing.T, v *box, m []byte) [][]byte
		leaked func(m []byte) func(frame) bool
		before func(t *testing.T) // what the victims do first (a Solicit to answer)
	}{
		{
			name: "forged IPv6 source",
			frames: func(t *testing.T, v *box, m []byte) [][]byte {
				return [][]byte{ether(v.mac(), att.mac(), 0x86dd, echo6(free, ip6Of(t, v), m)),
					ether(v.mac(), att.mac(), 0x86dd, echo6(nbr6, ip6Of(t, v), m)),
					ether(v.mac(), att.mac(), 0x86dd, echo6(probe.LinkLocal(fakeMAC), ip6Of(t, v), m))}
			},
			leaked: withMarker,
		},
		{
			name: "router advertisement",
			frames: func(t *testing.T, v *box, m []byte) [][]byte {
				ra := &ndp.RouterAdvertisement{CurrentHopLimit: 64, RouterLifetime: 30 * time.Minute, Options: []ndp.Option{
					&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: att.mac()},
					&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
						ValidLifetime: time.Hour, PreferredLifetime: time.Hour, Prefix: rogue.Addr()},
				}}
				ll := probe.LinkLocal(att.mac())
				return [][]byte{ndpFrame(t, allNodesMAC, att.mac(), ll, allNodes, ra),
					ndpFrame(t, v.mac(), att.mac(), ll, probe.LinkLocal(v.mac()), ra)}
			},
			leaked: func([]byte) func(frame) bool {
				return func(f frame) bool { return bytes.Contains(f.raw, rogue.Addr().AsSlice()[:8]) }
			},
		},
		{
			name: "DHCPv6 server answering another container's Solicit",
			frames: func(t *testing.T, v *box, m []byte) [][]byte {
				// The victim's Solicit (sent in before) has the transaction 0x5ec6d5; a
				// rogue server answers it, to the victim and to all DHCP clients' group.
				return [][]byte{dhcp6Answer(att.mac(), v.mac(), probe.LinkLocal(att.mac()), probe.LinkLocal(v.mac()), 2, m),
					dhcp6Answer(att.mac(), v.mac(), probe.LinkLocal(att.mac()), probe.LinkLocal(v.mac()), 7, m),
					dhcp6Answer(att.mac(), allNodesMAC, probe.LinkLocal(att.mac()), allNodes, 7, m)}
			},
			leaked: withMarker,
			before: func(t *testing.T) {
				for _, v := range victims {
					v.sender(t).send(t, probe.Solicit(v.mac(), 0x5ec6d5, false))
				}
			},
		},
		{
			name: "neighbor advertisement claiming the neighbour's address",
			frames: func(t *testing.T, v *box, m []byte) [][]byte {
				na := &ndp.NeighborAdvertisement{Override: true, TargetAddress: nbr6, Options: []ndp.Option{
					&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: att.mac()}}}
				sol := *na
				sol.Solicited = true
				return [][]byte{ndpFrame(t, allNodesMAC, att.mac(), att6, allNodes, na),
					ndpFrame(t, v.mac(), att.mac(), att6, ip6Of(t, v), &sol),
					ndpFrame(t, v.mac(), att.mac(), probe.LinkLocal(att.mac()), ip6Of(t, v), &sol)}
			},
			leaked: func([]byte) func(frame) bool { return naFrom(nbr6, att.mac()) },
		},
		{
			name: "neighbor advertisement of its own address with another MAC",
			frames: func(t *testing.T, v *box, m []byte) [][]byte {
				var out [][]byte
				for _, mac := range []net.HardwareAddr{fakeMAC, nbr.mac()} {
					na := &ndp.NeighborAdvertisement{Override: true, Solicited: true, TargetAddress: att6, Options: []ndp.Option{
						&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}}}
					out = append(out, ndpFrame(t, v.mac(), att.mac(), att6, ip6Of(t, v), na),
						ndpFrame(t, allNodesMAC, att.mac(), att6, allNodes, na))
				}
				return out
			},
			leaked: func([]byte) func(frame) bool {
				return func(f frame) bool {
					na, ok := naOf(f)
					return ok && na.TargetAddress == att6 && (naTLL(na, fakeMAC) || naTLL(na, nbr.mac()))
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rxs []*capture
			var echos []int
			for _, v := range victims {
				rxs = append(rxs, v.listen(t))
				echos = append(echos, v.snmp6(t, "Icmp6InEchos"))
			}
			if tc.before != nil {
				tc.before(t)
			}
			m := marker(t, "ipv6")
			for _, v := range victims {
				tx.send(t, tc.frames(t, v, m)...)
			}
			fence(t, att.queryFence(tx), rxs...)
			for i, v := range victims {
				got := rxs[i].stop()
				if leaked := rxs[i].seen(tc.leaked(m)); len(leaked) > 0 {
					t.Errorf("%s received %d of %d frames of the attack, first: %s", v, len(leaked), len(got), leaked[0])
				}
				if after := v.snmp6(t, "Icmp6InEchos"); after != echos[i] {
					t.Errorf("%s's kernel counted %d ICMPv6 echo requests during the attack", v, after-echos[i])
				}
				for _, o := range []*box{att, nbr} {
					if o == v {
						continue
					}
					n := v.mustExec(t, "ip", "-6", "neigh", "show", ip6Of(t, o).String())
					if !strings.Contains(n, o.eth0.MAC) && strings.Contains(n, "lladdr") {
						t.Errorf("%s's neighbor entry for %s (%s) is %q, want its MAC %s", v, o.name, ip6Of(t, o), strings.TrimSpace(n), o.eth0.MAC)
					}
				}
			}
			control(t, "after")
		})
	}
}

// assertPortSecurity6: the container's OVN port is locked to its MAC and both addresses.
func assertPortSecurity6(t *testing.T, s *testutil.Stack, b *box) {
	t.Helper()
	got := s.NBCtl(t, "--bare", "--columns=port_security", "find", "logical_switch_port", "name="+b.eth0.Port)
	for _, want := range append([]string{strings.ToLower(b.eth0.MAC)}, addrsOf(b)...) {
		if !strings.Contains(strings.ToLower(got), strings.ToLower(want)) {
			t.Fatalf("port_security of %s's port %s is %q, want %s in it", b, b.eth0.Port, got, want)
		}
	}
}

func addrsOf(b *box) []string {
	var out []string
	for _, ip := range b.eth0.IPs {
		out = append(out, netip.MustParsePrefix(ip).Addr().String())
	}
	return out
}

func ip6Of(t *testing.T, b *box) netip.Addr { return netip.MustParseAddr(addrOf(t, b, true)) }

func ipv6CIDR(t *testing.T, b *box) string {
	t.Helper()
	for _, ip := range b.eth0.IPs {
		if netip.MustParsePrefix(ip).Addr().Is6() {
			return ip
		}
	}
	t.Fatalf("%s has no IPv6 address", b)
	return ""
}

// freeAddr6 is an address of the subnet no box has.
func freeAddr6(t *testing.T, subnet netip.Prefix, boxes ...*box) netip.Addr {
	t.Helper()
	a := subnet.Addr().As16()
	a[14], a[15] = 0xbe, 0xef
	free := netip.AddrFrom16(a)
	for _, b := range boxes {
		if ip6Of(t, b) == free {
			t.Fatalf("%s has %s", b, free)
		}
	}
	return free
}

// snmp6 reads one counter of /proc/net/snmp6 in the container ("Icmp6InEchos").
func (b *box) snmp6(t *testing.T, field string) int {
	t.Helper()
	out := b.mustExec(t, "cat", "/proc/net/snmp6")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == field {
			v, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("%s: no %s in /proc/net/snmp6", b, field)
	return 0
}

// echo6 is an IPv6 packet with an ICMPv6 echo request carrying data.
func echo6(src, dst netip.Addr, data []byte) []byte {
	msg := icmp.Message{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{ID: 0x5ec, Seq: 6, Data: data}}
	body, err := msg.Marshal(icmp.IPv6PseudoHeader(src.AsSlice(), dst.AsSlice()))
	if err != nil {
		panic(err)
	}
	return ipv6Packet(src, dst, 58, 64, body)
}

func ipv6Packet(src, dst netip.Addr, next, hop byte, payload []byte) []byte {
	h := make([]byte, 40, 40+len(payload))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:6], uint16(len(payload)))
	h[6], h[7] = next, hop
	s, d := src.As16(), dst.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	return append(h, payload...)
}

// ndpFrame is an NDP message in IPv6 (hop limit 255, as receivers require) in Ethernet.
func ndpFrame(t *testing.T, dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, m ndp.Message) []byte {
	t.Helper()
	body, err := ndp.MarshalMessageChecksum(m, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return ether(dstMAC, srcMAC, 0x86dd, ipv6Packet(src, dst, 58, 255, body))
}

// dhcp6Answer is a DHCPv6 Advertise (2) or Reply (7) for transaction 0x5ec6d5, from
// port 547 to 546, offering an address, with the marker in a vendor option (17).
func dhcp6Answer(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, typ byte, m []byte) []byte {
	msg := []byte{typ, 0x5e, 0xc6, 0xd5}
	opt := func(code uint16, data []byte) {
		msg = binary.BigEndian.AppendUint16(msg, code)
		msg = binary.BigEndian.AppendUint16(msg, uint16(len(data)))
		msg = append(msg, data...)
	}
	opt(2, append([]byte{0, 3, 0, 1}, srcMAC...)) // server ID
	addr := netip.MustParseAddr("fd00:bad:6::99").As16()
	iaaddr := binary.BigEndian.AppendUint16(nil, 5)
	iaaddr = binary.BigEndian.AppendUint16(iaaddr, 24)
	iaaddr = append(append(iaaddr, addr[:]...), 0, 0, 0x0e, 0x10, 0, 0, 0x1c, 0x20)
	opt(3, append(make([]byte, 12), iaaddr...))
	opt(17, append([]byte{0, 0, 0, 9}, m...))
	udp := make([]byte, 8, 8+len(msg))
	binary.BigEndian.PutUint16(udp[0:2], 547)
	binary.BigEndian.PutUint16(udp[2:4], 546)
	binary.BigEndian.PutUint16(udp[4:6], uint16(8+len(msg)))
	udp = append(udp, msg...)
	s, d := src.As16(), dst.As16()
	ph := append(append(append([]byte{}, s[:]...), d[:]...), 0, 0, byte(len(udp)>>8), byte(len(udp)), 0, 0, 0, 17)
	binary.BigEndian.PutUint16(udp[6:8], checksum(append(ph, udp...)))
	return ether(dstMAC, srcMAC, 0x86dd, ipv6Packet(src, dst, 17, 64, udp))
}

// naOf reads a neighbor advertisement out of a received frame.
func naOf(f frame) (*ndp.NeighborAdvertisement, bool) {
	if f.etherType != 0x86dd || len(f.payload) < 40+4 || f.payload[6] != 58 {
		return nil, false
	}
	m, err := ndp.ParseMessage(f.payload[40:])
	na, ok := m.(*ndp.NeighborAdvertisement)
	return na, err == nil && ok
}

// naFrom matches an NA for target sent from mac, or naming mac as target's.
func naFrom(target netip.Addr, mac net.HardwareAddr) func(frame) bool {
	return func(f frame) bool {
		na, ok := naOf(f)
		return ok && na.TargetAddress == target && (bytes.Equal(f.src, mac) || naTLL(na, mac))
	}
}

// naTLL reports whether the NA's target link-layer address is mac.
func naTLL(na *ndp.NeighborAdvertisement, mac net.HardwareAddr) bool {
	for _, o := range na.Options {
		if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Target && bytes.Equal(l.Addr, mac) {
			return true
		}
	}
	return false
}
