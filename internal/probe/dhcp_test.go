package probe

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

var testMAC = net.HardwareAddr{0xfa, 0x16, 0x3e, 1, 2, 3}

// offer turns a DISCOVER into the OFFER OVN would send for ip.
func offer(discover []byte, ip netip.Addr) []byte {
	f := append([]byte(nil), discover...)
	udp := f[34:]
	binary.BigEndian.PutUint16(udp[0:2], 67)
	binary.BigEndian.PutUint16(udp[2:4], 68)
	msg := f[42:]
	msg[0] = 2
	copy(msg[16:20], ip.AsSlice())
	copy(msg[240:], []byte{53, 1, 2, 255})
	return f
}

func TestDiscoverAndOffer(t *testing.T) {
	d := Discover(testMAC, 0xdeadbeef)
	if len(d) != 14+20+8+300 {
		t.Fatalf("frame of %d bytes", len(d))
	}
	if checksum(d[14:34]) != 0 {
		t.Fatal("IPv4 header checksum does not verify")
	}
	if got := net.HardwareAddr(d[6:12]); got.String() != testMAC.String() {
		t.Fatalf("source MAC %s", got)
	}
	want := netip.MustParseAddr("10.0.0.9")
	if ip, ok := ParseOffer(offer(d, want), 0xdeadbeef, testMAC); !ok || ip != want {
		t.Fatalf("ParseOffer = %v, %v", ip, ok)
	}
	// Our own DISCOVER (seen on the socket too), another transaction, another client.
	if _, ok := ParseOffer(d, 0xdeadbeef, testMAC); ok {
		t.Fatal("took the DISCOVER for an OFFER")
	}
	if _, ok := ParseOffer(offer(d, want), 1, testMAC); ok {
		t.Fatal("took another transaction's OFFER")
	}
	if _, ok := ParseOffer(offer(d, want), 0xdeadbeef, net.HardwareAddr{2, 0, 0, 0, 0, 1}); ok {
		t.Fatal("took another client's OFFER")
	}
	ack := offer(d, want)
	ack[42+242] = 5 // DHCPACK
	if _, ok := ParseOffer(ack, 0xdeadbeef, testMAC); ok {
		t.Fatal("took an ACK for an OFFER")
	}
}

// FuzzParseOffer: frames off the wire never make the parser panic, and what it accepts
// is an offer for the asked transaction and client.
func FuzzParseOffer(f *testing.F) {
	d := Discover(testMAC, 42)
	f.Add(offer(d, netip.MustParseAddr("10.1.2.3")))
	f.Add(d)
	f.Add([]byte{})
	f.Add(make([]byte, 600))
	f.Fuzz(func(t *testing.T, frame []byte) {
		ip, ok := ParseOffer(frame, 42, testMAC)
		if ok && (!ip.Is4() || frame[42] != 2) {
			t.Fatalf("accepted %v from a frame that is no offer", ip)
		}
	})
}
