package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
	"golang.org/x/sys/unix"
)

// Where OVN answers no DHCP for a port (IPv4 with DHCP off; IPv6 SLAAC, static, DHCP
// off), a Neutron router on the subnet still makes OVN answer for it: the logical switch
// replies to ARP and neighbor solicitations for the router port's address (the subnet's
// gateway), and the router answers router solicitations where the subnet has an
// ipv6_ra_mode. Those answers come through the same flows as a DHCP offer (the child
// port's tag, port security, the switch's pipeline), so they prove the path as well.
// Without a router, the switch answers just the same for any other port's address (but
// not the asking port's own), so Gateway also asks for such an address.
//
// NDP messages are built and read with github.com/mdlayher/ndp (and its ICMPv6 checksum,
// golang.org/x/net/icmp); its Conn is not used: it needs an ICMPv6 socket and an address
// on the interface, and a probe runs before the interface has one (a pool's, in the VM).
// ARP is 28 fixed bytes written here: github.com/mdlayher/arp would bring its own raw
// socket stack for them.

// ErrNoGateway says the gateway did not answer before the context ended.
var ErrNoGateway = errors.New("no answer from the gateway")

// Gateway sends, from ifName in the netns at nsPath ("" for the caller's) with the port's
// mac and address src, an ARP request (IPv4) or a neighbor solicitation (IPv6) for gw,
// until the answer for gw comes back to mac.
func Gateway(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, src, gw netip.Addr) error {
	if len(mac) != 6 {
		return fmt.Errorf("gateway probe on %s: MAC %q is not Ethernet", ifName, mac)
	}
	if src.Is4() != gw.Is4() || !src.IsValid() || !gw.IsValid() || src.Is4In6() || gw.Is4In6() {
		return fmt.Errorf("gateway probe on %s: %s and %s are not of one family", ifName, src, gw)
	}
	var x exchange
	if gw.Is4() {
		x = exchange{what: "arp", ethType: unix.ETH_P_ARP, frame: ARPRequest(mac, src, gw), dst: [6]byte(broadcastMAC),
			match: func(f []byte) (bool, error) { return ParseARPReply(f, mac, src, gw), nil }}
	} else {
		frame, err := NeighborSolicit(mac, src, gw)
		if err != nil {
			return fmt.Errorf("gateway probe on %s: %w", ifName, err)
		}
		x = exchange{what: "ndp", ethType: unix.ETH_P_IPV6, frame: frame, dst: [6]byte(frame[0:6]),
			match: func(f []byte) (bool, error) { return ParseNeighborAdvert(f, mac, gw), nil }}
	}
	if err := x.run(ctx, nsPath, ifName); err != nil {
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("%w %s on %s (%v)", ErrNoGateway, gw, ifName, err)
		}
		return err
	}
	return nil
}

// ErrNoRouterAdvert says no router advertisement with the prefix came back.
var ErrNoRouterAdvert = errors.New("no router advertisement from OVN")

// RouterAdvert sends router solicitations from ifName (see Gateway) until OVN's router
// answers one, to mac, with an RA that carries prefix.
func RouterAdvert(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, prefix netip.Prefix) error {
	if len(mac) != 6 {
		return fmt.Errorf("ra probe on %s: MAC %q is not Ethernet", ifName, mac)
	}
	if !prefix.Addr().Is6() || prefix.Addr().Is4In6() {
		return fmt.Errorf("ra probe on %s: %s is not IPv6", ifName, prefix)
	}
	frame, err := RouterSolicit(mac)
	if err != nil {
		return fmt.Errorf("ra probe on %s: %w", ifName, err)
	}
	x := exchange{what: "ra", ethType: unix.ETH_P_IPV6, frame: frame, dst: [6]byte(frame[0:6]),
		match: func(f []byte) (bool, error) { return ParseRouterAdvert(f, mac, prefix), nil }}
	if err := x.run(ctx, nsPath, ifName); err != nil {
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("%w with %s on %s (%v)", ErrNoRouterAdvert, prefix, ifName, err)
		}
		return err
	}
	return nil
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ARPRequest builds a broadcast Ethernet frame asking who has gw, from (mac, src).
func ARPRequest(mac net.HardwareAddr, src, gw netip.Addr) []byte {
	f := make([]byte, 0, 60)
	f = append(append(f, broadcastMAC...), mac...)
	f = binary.BigEndian.AppendUint16(f, unix.ETH_P_ARP)
	f = append(f, 0, 1, 8, 0, 6, 4, 0, 1) // Ethernet, IPv4, sizes, request
	s, g := src.As4(), gw.As4()
	f = append(append(f, mac...), s[:]...)
	f = append(append(f, make([]byte, 6)...), g[:]...)
	return append(f, make([]byte, 60-len(f))...) // the Ethernet minimum
}

// ParseARPReply reports whether frame is gw's ARP reply to (mac, src).
func ParseARPReply(frame []byte, mac net.HardwareAddr, src, gw netip.Addr) bool {
	if len(frame) < 14+28 || binary.BigEndian.Uint16(frame[12:14]) != unix.ETH_P_ARP || !equalMAC(frame[0:6], mac) {
		return false
	}
	a := frame[14:]
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != unix.ETH_P_IP ||
		a[4] != 6 || a[5] != 4 || binary.BigEndian.Uint16(a[6:8]) != 2 {
		return false
	}
	return netip.AddrFrom4([4]byte(a[14:18])) == gw && equalMAC(a[18:24], mac) &&
		netip.AddrFrom4([4]byte(a[24:28])) == src
}

// solicitedNode is the solicited-node multicast address of ip (RFC 4291 2.7.1).
func solicitedNode(ip netip.Addr) netip.Addr {
	a := ip.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]})
}

// multicastMAC is the Ethernet address of an IPv6 multicast group (RFC 2464 7).
func multicastMAC(group netip.Addr) net.HardwareAddr {
	a := group.As16()
	return net.HardwareAddr{0x33, 0x33, a[12], a[13], a[14], a[15]}
}

// NeighborSolicit builds an Ethernet frame with a neighbor solicitation for target, from
// (mac, src), to target's solicited-node group.
func NeighborSolicit(mac net.HardwareAddr, src, target netip.Addr) ([]byte, error) {
	dst := solicitedNode(target)
	m := &ndp.NeighborSolicitation{TargetAddress: target, Options: []ndp.Option{
		&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}}
	return icmp6Frame(multicastMAC(dst), mac, src, dst, m)
}

// RouterSolicit builds an Ethernet frame with a router solicitation from mac's
// link-local address to all routers.
func RouterSolicit(mac net.HardwareAddr) ([]byte, error) {
	dst := netip.MustParseAddr("ff02::2")
	m := &ndp.RouterSolicitation{Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}}
	return icmp6Frame(multicastMAC(dst), mac, LinkLocal(mac), dst, m)
}

// icmp6Frame wraps an NDP message in IPv6 (hop limit 255, as NDP requires) and Ethernet.
func icmp6Frame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, m ndp.Message) ([]byte, error) {
	body, err := ndp.MarshalMessageChecksum(m, src, dst)
	if err != nil {
		return nil, err
	}
	f := make([]byte, 14+40, 14+40+len(body))
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	binary.BigEndian.PutUint16(f[12:14], unix.ETH_P_IPV6)
	ip := f[14:54]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(body)))
	ip[6], ip[7] = unix.IPPROTO_ICMPV6, 255
	s, d := src.As16(), dst.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	return append(f, body...), nil
}

// ndpTo reads the NDP message of an Ethernet frame sent to mac, with its IPv6 source.
func ndpTo(frame []byte, mac net.HardwareAddr) (ndp.Message, netip.Addr, bool) {
	if len(frame) < 14+40+4 || binary.BigEndian.Uint16(frame[12:14]) != unix.ETH_P_IPV6 || !equalMAC(frame[0:6], mac) {
		return nil, netip.Addr{}, false
	}
	ip := frame[14:]
	n := int(binary.BigEndian.Uint16(ip[4:6]))
	// OVN adds no extension headers; NDP from off-link (hop limit below 255) is forged.
	if ip[0]>>4 != 6 || ip[6] != unix.IPPROTO_ICMPV6 || ip[7] != 255 || 40+n > len(ip) {
		return nil, netip.Addr{}, false
	}
	m, err := ndp.ParseMessage(ip[40 : 40+n])
	if err != nil {
		return nil, netip.Addr{}, false
	}
	return m, netip.AddrFrom16([16]byte(ip[8:24])), true
}

// ParseNeighborAdvert reports whether frame is a solicited neighbor advertisement of
// target, to mac.
func ParseNeighborAdvert(frame []byte, mac net.HardwareAddr, target netip.Addr) bool {
	m, _, ok := ndpTo(frame, mac)
	na, isNA := m.(*ndp.NeighborAdvertisement)
	return ok && isNA && na.Solicited && na.TargetAddress == target
}

// ParseRouterAdvert reports whether frame is a router advertisement, to mac, from a
// link-local address, that carries prefix.
func ParseRouterAdvert(frame []byte, mac net.HardwareAddr, prefix netip.Prefix) bool {
	m, src, ok := ndpTo(frame, mac)
	ra, isRA := m.(*ndp.RouterAdvertisement)
	if !ok || !isRA || !src.IsLinkLocalUnicast() {
		return false
	}
	for _, o := range ra.Options {
		if pi, ok := o.(*ndp.PrefixInformation); ok && pi.Prefix == prefix.Masked().Addr() && int(pi.PrefixLength) == prefix.Bits() {
			return true
		}
	}
	return false
}
