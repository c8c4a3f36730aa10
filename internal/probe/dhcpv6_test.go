package probe

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// advertise turns a Solicit into the Advertise OVN would send to it: to the client's
// MAC, from port 547, the same transaction, with an IA_NA for ip when ip is valid.
func advertise(solicit []byte, ip netip.Addr, typ byte) []byte {
	f := append([]byte(nil), solicit[:62]...)
	copy(f[0:6], solicit[6:12])
	copy(f[6:12], []byte{0xfa, 0x16, 0x3e, 9, 9, 9})
	binary.BigEndian.PutUint16(f[54:56], 547)
	binary.BigEndian.PutUint16(f[56:58], 546)
	msg := []byte{typ, solicit[63], solicit[64], solicit[65]}
	msg = appendOpt(msg, 2, []byte{0, 3, 0, 1, 1, 2, 3, 4, 5, 6}) // server ID first
	if ip.IsValid() {
		a := ip.As16()
		ia := appendOpt(make([]byte, 12), optIAAddr, append(a[:], make([]byte, 8)...))
		msg = appendOpt(msg, optIANA, ia)
	}
	f = append(f, msg...)
	binary.BigEndian.PutUint16(f[58:60], uint16(8+len(msg)))
	return f
}

func TestLinkLocal(t *testing.T) {
	if got, want := LinkLocal(testMAC), netip.MustParseAddr("fe80::f816:3eff:fe01:203"); got != want {
		t.Fatalf("LinkLocal(%s) = %s, want %s", testMAC, got, want)
	}
}

func TestSolicitAndAdvertise(t *testing.T) {
	s := Solicit(testMAC, 0xabcdef, false)
	if binary.BigEndian.Uint16(s[12:14]) != 0x86dd || s[14+6] != 17 || s[62] != msgSolicit {
		t.Fatalf("not a DHCPv6 Solicit over UDP/IPv6: % x", s[:64])
	}
	var src, dst [16]byte
	copy(src[:], s[22:38])
	copy(dst[:], s[38:54])
	if netip.AddrFrom16(src) != LinkLocal(testMAC) || netip.AddrFrom16(dst) != netip.MustParseAddr("ff02::1:2") {
		t.Fatalf("addresses %s -> %s", netip.AddrFrom16(src), netip.AddrFrom16(dst))
	}
	if checksum(append(append(append(src[:], dst[:]...), 0, 0, 0, byte(len(s)-54), 0, 0, 0, 17), s[54:]...)) != 0 {
		t.Fatal("UDP checksum does not verify")
	}
	var ia bool
	eachOpt(s[66:], func(code uint16, _ []byte) { ia = ia || code == optIANA })
	if !ia {
		t.Fatal("Solicit asks for no address (IA_NA)")
	}

	want := netip.MustParseAddr("fd00:77::6f")
	if got, ok := ParseAdvertise(advertise(s, want, msgAdvertise), 0xabcdef, testMAC); !ok || got != want {
		t.Fatalf("ParseAdvertise = %v, %v", got, ok)
	}
	if _, ok := ParseAdvertise(s, 0xabcdef, testMAC); ok {
		t.Fatal("our own Solicit taken for an answer")
	}
	if _, ok := ParseAdvertise(advertise(s, want, msgAdvertise), 0xabcdee, testMAC); ok {
		t.Fatal("another transaction's answer accepted")
	}
	if _, ok := ParseAdvertise(advertise(s, want, msgAdvertise)[:70], 0xabcdef, testMAC); ok {
		t.Fatal("a truncated answer accepted")
	}
}

func TestInformationRequest(t *testing.T) {
	s := Solicit(testMAC, 7, true)
	if s[62] != msgInfoRequest {
		t.Fatalf("stateless asks with message type %d", s[62])
	}
	eachOpt(s[66:], func(code uint16, _ []byte) {
		if code == optIANA {
			t.Fatal("an Information-Request asks for an address")
		}
	})
	got, ok := ParseAdvertise(advertise(s, netip.Addr{}, msgReply), 7, testMAC)
	if !ok || got.IsValid() {
		t.Fatalf("stateless Reply: %v, %v", got, ok)
	}
}
