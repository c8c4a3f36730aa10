package probe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// OVN answers DHCPv6 for a port of an IPv6 subnet with DHCP on in a DHCPv6 mode from
// the same flows as DHCPv4 (ovn-controller's pinctrl): an answer proves the IPv6 data
// path as an OFFER proves the IPv4 one. A stateful subnet advertises the port's own
// address; a stateless one answers an Information-Request with options only.

// ErrNoAnswerV6 says no DHCPv6 answer came back before the context ended.
var ErrNoAnswerV6 = errors.New("no DHCPv6 answer from OVN")

// DHCPv6 message types and options used here (RFC 8415).
const (
	msgSolicit     = 1
	msgAdvertise   = 2
	msgReply       = 7
	msgInfoRequest = 11
	optClientID    = 1
	optIANA        = 3
	optIAAddr      = 5
	optElapsed     = 8
)

// DHCPv6 sends DHCPv6 requests from ifName, in the network namespace at nsPath ("" for
// the caller's), with the given MAC, until OVN answers. want is the address a stateful
// subnet must advertise; the unspecified address (::) asks as a stateless client
// (Information-Request), whose answer carries no address.
func DHCPv6(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, want netip.Addr) error {
	if len(mac) != 6 {
		return fmt.Errorf("dhcpv6 probe on %s: MAC %q is not Ethernet", ifName, mac)
	}
	if !want.Is6() || want.Is4In6() {
		return fmt.Errorf("dhcpv6 probe on %s: %s is not IPv6", ifName, want)
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	xid := binary.BigEndian.Uint32(b[:]) & 0xffffff
	stateless := want.IsUnspecified()
	x := exchange{
		what: "dhcpv6", ethType: unix.ETH_P_IPV6, frame: Solicit(mac, xid, stateless),
		dst: [6]byte{0x33, 0x33, 0, 1, 0, 2}, // ff02::1:2, all DHCP relay agents and servers
		match: func(frame []byte) (bool, error) {
			got, ok := ParseAdvertise(frame, xid, mac)
			if ok && !stateless && got != want {
				return true, fmt.Errorf("dhcpv6 probe on %s: OVN advertises %v, Neutron gave %s", ifName, got, want)
			}
			return ok, nil
		},
	}
	if err := x.run(ctx, nsPath, ifName); err != nil {
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("%w on %s (%v)", ErrNoAnswerV6, ifName, err)
		}
		return err
	}
	return nil
}

// LinkLocal is the EUI-64 link-local address of mac: the IPv6 source OVN's port
// security allows a port besides its own addresses.
func LinkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	copy(a[8:11], mac[0:3])
	a[8] ^= 0x02
	a[11], a[12] = 0xff, 0xfe
	copy(a[13:16], mac[3:6])
	return netip.AddrFrom16(a)
}

// Solicit builds an Ethernet frame with a DHCPv6 Solicit asking for one address (IA_NA)
// or, stateless, an Information-Request; from mac's link-local address, port 546, to
// ff02::1:2 port 547.
func Solicit(mac net.HardwareAddr, xid uint32, stateless bool) []byte {
	var msg []byte
	typ := byte(msgSolicit)
	if stateless {
		typ = msgInfoRequest
	}
	msg = append(msg, typ, byte(xid>>16), byte(xid>>8), byte(xid))
	duid := append([]byte{0, 3, 0, 1}, mac...) // DUID-LL, Ethernet
	msg = appendOpt(msg, optClientID, duid)
	if !stateless {
		iaid := append([]byte{}, mac[2:6]...)
		msg = appendOpt(msg, optIANA, append(iaid, make([]byte, 8)...)) // T1, T2: 0
	}
	msg = appendOpt(msg, optElapsed, []byte{0, 0})

	src, dst := LinkLocal(mac).As16(), netip.MustParseAddr("ff02::1:2").As16()
	frame := make([]byte, 14+40+8+len(msg))
	eth, ip, udp := frame[:14], frame[14:54], frame[54:62]
	copy(eth[0:6], []byte{0x33, 0x33, 0, 1, 0, 2})
	copy(eth[6:12], mac)
	binary.BigEndian.PutUint16(eth[12:14], unix.ETH_P_IPV6)
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:6], uint16(8+len(msg)))
	ip[6] = unix.IPPROTO_UDP
	ip[7] = 1 // hop limit: the link only
	copy(ip[8:24], src[:])
	copy(ip[24:40], dst[:])
	binary.BigEndian.PutUint16(udp[0:2], 546)
	binary.BigEndian.PutUint16(udp[2:4], 547)
	binary.BigEndian.PutUint16(udp[4:6], uint16(8+len(msg)))
	copy(frame[62:], msg)
	binary.BigEndian.PutUint16(udp[6:8], udp6Checksum(src, dst, frame[54:]))
	return frame
}

func appendOpt(b []byte, code uint16, data []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, code)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	return append(b, data...)
}

// udp6Checksum is UDP's checksum over IPv6 (mandatory there): the pseudo-header, then
// the datagram with its checksum field zero.
func udp6Checksum(src, dst [16]byte, datagram []byte) uint16 {
	pseudo := make([]byte, 0, 40+len(datagram))
	pseudo = append(pseudo, src[:]...)
	pseudo = append(pseudo, dst[:]...)
	pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(datagram)))
	pseudo = append(pseudo, 0, 0, 0, unix.IPPROTO_UDP)
	pseudo = append(pseudo, datagram...)
	c := checksum(pseudo)
	if c == 0 {
		c = 0xffff // zero means "no checksum", which IPv6 forbids
	}
	return c
}

// ParseAdvertise reads a frame and, if it is a DHCPv6 Advertise or Reply to mac for xid,
// returns the first address of its IA_NA (invalid when it has none: stateless).
func ParseAdvertise(frame []byte, xid uint32, mac net.HardwareAddr) (netip.Addr, bool) {
	if len(frame) < 14+40+8+4 || binary.BigEndian.Uint16(frame[12:14]) != unix.ETH_P_IPV6 ||
		!equalMAC(frame[0:6], mac) {
		return netip.Addr{}, false
	}
	ip := frame[14:]
	if ip[0]>>4 != 6 || ip[6] != unix.IPPROTO_UDP { // OVN adds no extension headers
		return netip.Addr{}, false
	}
	udp := ip[40:]
	if binary.BigEndian.Uint16(udp[0:2]) != 547 || binary.BigEndian.Uint16(udp[2:4]) != 546 {
		return netip.Addr{}, false
	}
	n := int(binary.BigEndian.Uint16(udp[4:6]))
	if n < 8+4 || n > len(udp) {
		return netip.Addr{}, false
	}
	msg := udp[8:n]
	if (msg[0] != msgAdvertise && msg[0] != msgReply) ||
		uint32(msg[1])<<16|uint32(msg[2])<<8|uint32(msg[3]) != xid {
		return netip.Addr{}, false
	}
	var addr netip.Addr
	eachOpt(msg[4:], func(code uint16, data []byte) {
		if code != optIANA || len(data) < 12 || addr.IsValid() {
			return
		}
		eachOpt(data[12:], func(code uint16, data []byte) {
			if code == optIAAddr && len(data) >= 24 && !addr.IsValid() {
				addr = netip.AddrFrom16([16]byte(data[:16]))
			}
		})
	})
	return addr, true
}

// eachOpt calls f for each well-formed DHCPv6 option of b, stopping at a truncated one.
func eachOpt(b []byte, f func(code uint16, data []byte)) {
	for len(b) >= 4 {
		code, n := binary.BigEndian.Uint16(b[0:2]), int(binary.BigEndian.Uint16(b[2:4]))
		if len(b) < 4+n {
			return
		}
		f(code, b[4:4+n])
		b = b[4+n:]
	}
}
