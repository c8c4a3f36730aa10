// Package probe proves that a container interface's data path is live before the
// container may use it. Neutron cannot tell: the OVN trunk driver marks a subport ACTIVE
// as soon as its parent is, before ovn-controller on the hypervisor has installed the
// flows that match the VM's port and the VLAN tag. OVN itself answers DHCP for a port
// (native DHCP, enabled on Neutron subnets by default) only from those flows, so a
// DHCPOFFER to a DISCOVER sent from the interface, carrying the port's own address,
// proves the whole path: the VM's OVS tagging, the hypervisor's flows for the child
// port, port security with Neutron's MAC, and the logical switch's pipeline.
package probe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoAnswer says no DHCPOFFER came back before the context ended.
var ErrNoAnswer = errors.New("no DHCP answer from OVN")

// DHCP sends DHCPDISCOVERs from ifName, in the network namespace at nsPath ("" for the
// caller's), with the given MAC, until OVN offers an address, and checks that the offer
// is want. An interface that is down is brought up for the probe and down again after.
func DHCP(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, want netip.Addr) error {
	if len(mac) != 6 {
		return fmt.Errorf("dhcp probe on %s: MAC %q is not Ethernet", ifName, mac)
	}
	if !want.Is4() {
		return fmt.Errorf("dhcp probe on %s: %s is not IPv4", ifName, want)
	}
	var xid [4]byte
	if _, err := rand.Read(xid[:]); err != nil {
		return err
	}
	x := exchange{
		what: "dhcp", ethType: unix.ETH_P_IP, frame: Discover(mac, binary.BigEndian.Uint32(xid[:])),
		dst: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		match: func(frame []byte) (bool, error) {
			offer, ok := ParseOffer(frame, binary.BigEndian.Uint32(xid[:]), mac)
			if ok && offer != want {
				return true, fmt.Errorf("dhcp probe on %s: OVN offers %s, Neutron gave %s", ifName, offer, want)
			}
			return ok, nil
		},
	}
	if err := x.run(ctx, nsPath, ifName); err != nil {
		if errors.Is(err, errTimeout) {
			return fmt.Errorf("%w on %s (%v)", ErrNoAnswer, ifName, err)
		}
		return err
	}
	return nil
}

// errTimeout ends an exchange whose context ended without an answer.
var errTimeout = errors.New("no answer")

// exchange is one request that OVN answers from the port's flows: the frame is sent
// from the interface again and again (backing off) until match accepts a frame read
// back, or the context ends.
type exchange struct {
	what    string // for errors: dhcp, dhcpv6
	ethType uint16
	frame   []byte
	dst     [6]byte                          // the frame's destination MAC
	match   func(frame []byte) (bool, error) // true: the answer (err: a wrong one)
}

// run does the exchange in the netns at nsPath ("" for the caller's).
func (x exchange) run(ctx context.Context, nsPath, ifName string) error {
	run := func(ns.NetNS) error { return x.onThread(ctx, ifName) }
	if nsPath == "" {
		return run(nil)
	}
	netns, err := ns.GetNS(nsPath)
	if err != nil {
		return fmt.Errorf("%s probe: open netns %s: %w", x.what, nsPath, err)
	}
	defer netns.Close()
	return netns.Do(run)
}

func (x exchange) onThread(ctx context.Context, ifName string) (err error) {
	// The socket and the link state belong to this thread's namespace.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	link, err := netlink.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("%s probe: %s: %w", x.what, ifName, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("%s probe: bring %s up: %w", x.what, ifName, err)
		}
		defer func() {
			if derr := netlink.LinkSetDown(link); derr != nil && err == nil {
				err = fmt.Errorf("%s probe: bring %s down again: %w", x.what, ifName, derr)
			}
		}()
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(x.ethType)))
	if err != nil {
		return fmt.Errorf("%s probe: packet socket: %w", x.what, err)
	}
	defer unix.Close(fd)
	addr := &unix.SockaddrLinklayer{Protocol: htons(x.ethType), Ifindex: link.Attrs().Index}
	if err := unix.Bind(fd, addr); err != nil {
		return fmt.Errorf("%s probe: bind to %s: %w", x.what, ifName, err)
	}
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("%s probe: %w", x.what, err)
	}
	dst := &unix.SockaddrLinklayer{Protocol: htons(x.ethType), Ifindex: link.Attrs().Index, Halen: 6}
	copy(dst.Addr[:], x.dst[:])
	buf := make([]byte, 2048)
	interval := 50 * time.Millisecond
	// others counts what was read that is not the answer: a timeout then tells an OVN
	// that said nothing from answers this probe did not take (a flake's first question).
	start, others := time.Now(), 0
	for sent := 0; ; sent++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w to %d requests in %s (%d other frames read)", errTimeout, sent, time.Since(start).Round(time.Millisecond), others)
		}
		if err := unix.Sendto(fd, x.frame, 0, dst); err != nil {
			return fmt.Errorf("%s probe: send on %s: %w", x.what, ifName, err)
		}
		deadline := time.Now().Add(interval)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					continue
				}
				return fmt.Errorf("%s probe: receive on %s: %w", x.what, ifName, err)
			}
			if ok, err := x.match(buf[:n]); ok {
				return err
			}
			others++
		}
		if interval < 400*time.Millisecond {
			interval *= 2
		}
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Discover builds an Ethernet frame with a DHCPDISCOVER from mac: broadcast, from
// 0.0.0.0:68 to 255.255.255.255:67, as OVN's DHCP flows expect.
func Discover(mac net.HardwareAddr, xid uint32) []byte {
	const bootp = 300 // the minimum BOOTP message size relays and servers expect
	frame := make([]byte, 14+20+8+bootp)
	eth, ip, udp, msg := frame[:14], frame[14:34], frame[34:42], frame[42:]
	copy(eth[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(eth[6:12], mac)
	binary.BigEndian.PutUint16(eth[12:14], unix.ETH_P_IP)

	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(20+8+bootp))
	ip[8] = 64 // TTL
	ip[9] = unix.IPPROTO_UDP
	copy(ip[16:20], []byte{255, 255, 255, 255})
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip))

	binary.BigEndian.PutUint16(udp[0:2], 68)
	binary.BigEndian.PutUint16(udp[2:4], 67)
	binary.BigEndian.PutUint16(udp[4:6], uint16(8+bootp)) // checksum 0: none, allowed on IPv4

	msg[0], msg[1], msg[2] = 1, 1, 6 // BOOTREQUEST, Ethernet, 6-byte address
	binary.BigEndian.PutUint32(msg[4:8], xid)
	binary.BigEndian.PutUint16(msg[10:12], 0x8000) // broadcast the answer
	copy(msg[28:34], mac)
	copy(msg[236:240], []byte{99, 130, 83, 99}) // magic cookie
	copy(msg[240:], []byte{53, 1, 1, 255})      // DHCPDISCOVER, end
	return frame
}

// ParseOffer reads a frame and returns the address a DHCPOFFER for (xid, mac) offers.
func ParseOffer(frame []byte, xid uint32, mac net.HardwareAddr) (netip.Addr, bool) {
	if len(frame) < 14+20+8+240 || binary.BigEndian.Uint16(frame[12:14]) != unix.ETH_P_IP {
		return netip.Addr{}, false
	}
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl+8+240 || ip[9] != unix.IPPROTO_UDP {
		return netip.Addr{}, false
	}
	udp := ip[ihl:]
	if binary.BigEndian.Uint16(udp[0:2]) != 67 || binary.BigEndian.Uint16(udp[2:4]) != 68 {
		return netip.Addr{}, false
	}
	msg := udp[8:]
	if msg[0] != 2 || binary.BigEndian.Uint32(msg[4:8]) != xid || !equalMAC(msg[28:34], mac) ||
		binary.BigEndian.Uint32(msg[236:240]) != 0x63825363 {
		return netip.Addr{}, false
	}
	for opts := msg[240:]; len(opts) > 0; {
		code := opts[0]
		if code == 255 {
			break
		}
		if code == 0 {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || len(opts) < 2+int(opts[1]) {
			break
		}
		if code == 53 && opts[1] == 1 && opts[2] == 2 {
			yi, _ := netip.AddrFromSlice(msg[16:20])
			return yi, true
		}
		opts = opts[2+int(opts[1]):]
	}
	return netip.Addr{}, false
}

func equalMAC(a []byte, b net.HardwareAddr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
