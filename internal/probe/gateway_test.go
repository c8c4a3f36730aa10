package probe

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
)

var routerMAC = net.HardwareAddr{0xfa, 0x16, 0x3e, 9, 9, 9}

// icmp6Verifies checks the ICMPv6 checksum of an IPv6-in-Ethernet frame.
func icmp6Verifies(f []byte) bool {
	ip := f[14:]
	n := binary.BigEndian.Uint16(ip[4:6])
	var ph []byte
	ph = append(ph, ip[8:40]...)
	ph = binary.BigEndian.AppendUint32(ph, uint32(n))
	ph = append(ph, 0, 0, 0, 58)
	return checksum(append(ph, ip[40:40+int(n)]...)) == 0
}

// answer is an NDP message OVN would send to testMAC from src.
func answer(t *testing.T, src, dst netip.Addr, m ndp.Message, hop byte) []byte {
	t.Helper()
	f, err := icmp6Frame(testMAC, routerMAC, src, dst, m)
	if err != nil {
		t.Fatal(err)
	}
	f[14+7] = hop
	return f
}

func TestNeighborSolicit(t *testing.T) {
	src, gw := netip.MustParseAddr("fd00:77::f816:3eff:fe01:203"), netip.MustParseAddr("fd00:77::1")
	f, err := NeighborSolicit(testMAC, src, gw)
	if err != nil {
		t.Fatal(err)
	}
	if got := net.HardwareAddr(f[0:6]).String(); got != "33:33:ff:00:00:01" {
		t.Errorf("NS to %s, want gw's solicited-node group's MAC", got)
	}
	if dst := netip.AddrFrom16([16]byte(f[38:54])); dst != netip.MustParseAddr("ff02::1:ff00:1") {
		t.Errorf("NS to %s, want ff02::1:ff00:1", dst)
	}
	if netip.AddrFrom16([16]byte(f[22:38])) != src || f[14+7] != 255 || f[14+6] != 58 {
		t.Errorf("IPv6 header % x", f[14:54])
	}
	if !icmp6Verifies(f) {
		t.Error("ICMPv6 checksum does not verify")
	}
	m, err := ndp.ParseMessage(f[54:])
	ns, ok := m.(*ndp.NeighborSolicitation)
	if err != nil || !ok || ns.TargetAddress != gw || len(ns.Options) != 1 {
		t.Fatalf("NS = %#v, %v", m, err)
	}
	if lla := ns.Options[0].(*ndp.LinkLayerAddress); lla.Direction != ndp.Source || lla.Addr.String() != testMAC.String() {
		t.Errorf("source link-layer option %v", lla)
	}

	na := &ndp.NeighborAdvertisement{Router: true, Solicited: true, Override: true, TargetAddress: gw,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: routerMAC}}}
	if !ParseNeighborAdvert(answer(t, gw, src, na, 255), testMAC, gw) {
		t.Fatal("the gateway's NA not taken")
	}
	other := *na
	other.TargetAddress = netip.MustParseAddr("fd00:77::2")
	unsolicited := *na
	unsolicited.Solicited = false
	for name, f := range map[string][]byte{
		"another target":  answer(t, gw, src, &other, 255),
		"unsolicited":     answer(t, gw, src, &unsolicited, 255),
		"hop limit 64":    answer(t, gw, src, na, 64),
		"our own NS":      f,
		"truncated":       answer(t, gw, src, na, 255)[:60],
		"to another MAC":  func() []byte { b := answer(t, gw, src, na, 255); b[5] ^= 1; return b }(),
		"not an NDP type": func() []byte { b := answer(t, gw, src, na, 255); b[54] = 128; return b }(),
	} {
		if ParseNeighborAdvert(f, testMAC, gw) {
			t.Errorf("%s: taken for the gateway's NA", name)
		}
	}
}

func TestRouterSolicitAndAdvert(t *testing.T) {
	f, err := RouterSolicit(testMAC)
	if err != nil {
		t.Fatal(err)
	}
	if got := net.HardwareAddr(f[0:6]).String(); got != "33:33:00:00:00:02" {
		t.Errorf("RS to %s", got)
	}
	if src := netip.AddrFrom16([16]byte(f[22:38])); src != LinkLocal(testMAC) {
		t.Errorf("RS from %s, want the link-local address", src)
	}
	if !icmp6Verifies(f) {
		t.Error("ICMPv6 checksum does not verify")
	}
	if m, err := ndp.ParseMessage(f[54:]); err != nil || m.Type() != 133 {
		t.Fatalf("RS = %v, %v", m, err)
	}

	prefix := netip.MustParsePrefix("fd00:77::/64")
	lla := LinkLocal(routerMAC)
	ra := func(p netip.Prefix) *ndp.RouterAdvertisement {
		return &ndp.RouterAdvertisement{CurrentHopLimit: 255, RouterLifetime: 30 * time.Minute, Options: []ndp.Option{
			&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: routerMAC},
			ndp.NewMTU(1442),
			&ndp.PrefixInformation{PrefixLength: uint8(p.Bits()), OnLink: true, AutonomousAddressConfiguration: true,
				ValidLifetime: time.Hour, PreferredLifetime: time.Hour, Prefix: p.Addr()},
		}}
	}
	if !ParseRouterAdvert(answer(t, lla, LinkLocal(testMAC), ra(prefix), 255), testMAC, prefix) {
		t.Fatal("OVN's RA not taken")
	}
	for name, f := range map[string][]byte{
		"another prefix": answer(t, lla, LinkLocal(testMAC), ra(netip.MustParsePrefix("fd00:78::/64")), 255),
		"another length": answer(t, lla, LinkLocal(testMAC), ra(netip.MustParsePrefix("fd00:77::/56")), 255),
		"from a global":  answer(t, netip.MustParseAddr("fd00:77::1"), LinkLocal(testMAC), ra(prefix), 255),
		"hop limit 1":    answer(t, lla, LinkLocal(testMAC), ra(prefix), 1),
		"our own RS":     f,
		"no prefix":      answer(t, lla, LinkLocal(testMAC), &ndp.RouterAdvertisement{}, 255),
		"to all nodes' group": func() []byte {
			b := answer(t, lla, LinkLocal(testMAC), ra(prefix), 255)
			copy(b, []byte{0x33, 0x33, 0, 0, 0, 1})
			return b
		}(),
	} {
		if ParseRouterAdvert(f, testMAC, prefix) {
			t.Errorf("%s: taken for OVN's RA", name)
		}
	}
}

func TestARP(t *testing.T) {
	src, gw := netip.MustParseAddr("10.9.0.5"), netip.MustParseAddr("10.9.0.1")
	req := ARPRequest(testMAC, src, gw)
	if len(req) != 60 || net.HardwareAddr(req[0:6]).String() != "ff:ff:ff:ff:ff:ff" || binary.BigEndian.Uint16(req[12:14]) != 0x0806 {
		t.Fatalf("ARP request % x", req)
	}
	if binary.BigEndian.Uint16(req[20:22]) != 1 || netip.AddrFrom4([4]byte(req[28:32])) != src || netip.AddrFrom4([4]byte(req[38:42])) != gw {
		t.Fatalf("ARP request fields % x", req[14:42])
	}
	// The reply: the request turned around, as OVN's ARP responder does.
	reply := func(from netip.Addr, to net.HardwareAddr) []byte {
		r := append([]byte(nil), req...)
		copy(r[0:6], to)
		copy(r[6:12], routerMAC)
		r[21] = 2
		f4, s4 := from.As4(), src.As4()
		copy(r[22:28], routerMAC)
		copy(r[28:32], f4[:])
		copy(r[32:38], to)
		copy(r[38:42], s4[:])
		return r
	}
	if !ParseARPReply(reply(gw, testMAC), testMAC, src, gw) {
		t.Fatal("the gateway's reply not taken")
	}
	if ParseARPReply(reply(netip.MustParseAddr("10.9.0.2"), testMAC), testMAC, src, gw) {
		t.Error("another address's reply taken")
	}
	if ParseARPReply(reply(gw, routerMAC), testMAC, src, gw) {
		t.Error("a reply to another MAC taken")
	}
	if ParseARPReply(req, testMAC, src, gw) {
		t.Error("our own request taken")
	}
}
