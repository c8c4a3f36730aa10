//go:build integration

package netdev

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// testNS is a named network namespace that removes itself at test end.
type testNS struct {
	ns.NetNS
	once sync.Once
	err  error
}

func newNS(tb testing.TB) *testNS {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Fatal("integration tests need root (network namespaces, netlink)")
	}
	n, err := testutils.NewNS()
	if err != nil {
		tb.Fatalf("create netns: %v", err)
	}
	t := &testNS{NetNS: n}
	tb.Cleanup(func() {
		if err := t.remove(); err != nil {
			tb.Errorf("remove netns %s: %v", n.Path(), err)
		}
	})
	return t
}

// remove unmounts the netns; the kernel then destroys it with every link in it.
func (n *testNS) remove() error {
	n.once.Do(func() {
		n.Close()
		n.err = testutils.UnmountNS(n.NetNS)
	})
	return n.err
}

// name is what `ip netns exec` knows the namespace as.
func (n *testNS) name() string { return filepath.Base(n.Path()) }

// in runs f inside n on a locked thread.
func (n *testNS) in(f func() error) error {
	return n.Do(func(ns.NetNS) error { return f() })
}

// must runs f inside n and fails the test on error.
func (n *testNS) must(tb testing.TB, what string, f func() error) {
	tb.Helper()
	if err := n.in(f); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// linkNames lists every link in n except lo, sorted.
func (n *testNS) linkNames(tb testing.TB) []string {
	tb.Helper()
	var names []string
	n.must(tb, "list links", func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if l.Attrs().Name != "lo" {
				names = append(names, l.Attrs().Name)
			}
		}
		return nil
	})
	sort.Strings(names)
	return names
}

// link looks up a link by name in n.
func (n *testNS) link(tb testing.TB, name string) netlink.Link {
	tb.Helper()
	var l netlink.Link
	n.must(tb, "look up "+name, func() (err error) {
		l, err = netlink.LinkByName(name)
		return err
	})
	return l
}

func (n *testNS) txChecksum(tb testing.TB, name string) bool {
	tb.Helper()
	var on bool
	n.must(tb, "read tx checksum of "+name, func() (err error) {
		on, err = TXChecksum(context.Background(), name)
		return err
	})
	return on
}

// addAddr gives a link in n an address, without DAD for IPv6.
func (n *testNS) addAddr(tb testing.TB, name, cidr string) {
	tb.Helper()
	n.must(tb, "add "+cidr+" to "+name, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			return err
		}
		a.Flags = unix.IFA_F_NODAD
		return netlink.AddrAdd(l, a)
	})
}

// addBridge creates a bridge in n, to occupy a name with a non-veth link
// (bridges are built into the kernel; the dummy module may be missing).
func (n *testNS) addBridge(tb testing.TB, name string) {
	tb.Helper()
	n.must(tb, "add bridge "+name, func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		return netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
	})
}

// ping sends echo requests from n to addr until one is answered: a reply that comes
// late (a busy machine) or not at all is asked for again, for as long as the test's time
// lasts.
func (n *testNS) ping(tb testing.TB, addr string) error {
	args := []string{"netns", "exec", n.name(), "ping", "-n", "-c", "1", "-W", "1", addr}
	if strings.Contains(addr, ":") {
		args = []string{"netns", "exec", n.name(), "ping", "-6", "-n", "-c", "1", "-W", "1", addr}
	}
	ctx := testutil.Context(tb)
	for {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("ping %s from %s: no reply when the test's time was up: %v\n%s", addr, n.name(), err, out)
		}
	}
}

// waitLinks waits until cond holds in n: it checks now and again after every link event
// in n, from a netlink subscription made before the first check, so that no change
// slips in between. Only the test's time bounds the wait (a condition that never comes
// fails the test when it is up, saying what it waited for).
func (n *testNS) waitLinks(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	h, err := netns.GetFromPath(n.Path())
	if err != nil {
		tb.Fatalf("open netns %s: %v", n.Path(), err)
	}
	defer h.Close()
	updates := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{Namespace: &h}); err != nil {
		tb.Fatalf("subscribe to link events in %s: %v", n.name(), err)
	}
	defer func() {
		close(done)
		for range updates { // until the subscription's goroutine has ended
		}
	}()
	ctx := testutil.Context(tb)
	for !cond() {
		select {
		case _, ok := <-updates:
			if !ok {
				tb.Fatalf("%s: the link subscription in %s ended", what, n.name())
			}
		case <-ctx.Done():
			tb.Fatalf("%s: not so when the test's time was up", what)
		}
	}
}

func cidr(tb testing.TB, s string) net.IPNet {
	tb.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		tb.Fatal(err)
	}
	n.IP = ip
	return *n
}

func testPort(i int) string { return fmt.Sprintf("%08x-1111-2222-3333-444455556666", i+1) }

// testSpec is a fully populated spec for port i on subnets 10.i.0.0/24 and
// 2001:db8:i::/64, gateways .1 and ::1, container address .2 and ::2.
func testSpec(tb testing.TB, i int, netnsPath string) Spec {
	tb.Helper()
	return Spec{
		HostName: HostName(testPort(i)),
		NetNS:    netnsPath,
		IfName:   "eth0",
		MAC:      net.HardwareAddr{0xfa, 0x16, 0x3e, 0x00, byte(i >> 8), byte(i)},
		Addrs: []net.IPNet{
			cidr(tb, fmt.Sprintf("10.%d.0.2/24", i%250)),
			cidr(tb, fmt.Sprintf("2001:db8:%x::2/64", i)),
		},
		Gateways: []net.IP{
			net.ParseIP(fmt.Sprintf("10.%d.0.1", i%250)),
			net.ParseIP(fmt.Sprintf("2001:db8:%x::1", i)),
		},
		MTU: 1400,
	}
}

// create runs Create inside vm, as the product does inside the VM's netns.
func create(vm *testNS, s Spec) error {
	return vm.in(func() error { return Create(context.Background(), s) })
}

// addrsOf returns the addresses of a link in n as "ip/len" with their flags.
func (n *testNS) addrsOf(tb testing.TB, name string) map[string]int {
	tb.Helper()
	got := map[string]int{}
	n.must(tb, "list addresses of "+name, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			got[a.IPNet.String()] = a.Flags
		}
		return nil
	})
	return got
}

// globalAddrs drops link-local IPv6 addresses, which the kernel adds itself.
func globalAddrs(m map[string]int) []string {
	var out []string
	for a := range m {
		ip, _, _ := net.ParseCIDR(a)
		if !ip.IsLinkLocalUnicast() {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// defaultGateways returns the gateways of the default routes through name.
func (n *testNS) defaultGateways(tb testing.TB, name string) []string {
	tb.Helper()
	var gws []string
	n.must(tb, "list routes of "+name, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		routes, err := netlink.RouteList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			if r.Gw != nil {
				gws = append(gws, r.Gw.String())
			}
		}
		return nil
	})
	sort.Strings(gws)
	return gws
}

// udpChecksumSeen sends one UDP datagram from inside ctr to dst:9 and
// captures it with an AF_PACKET socket on hostEnd in vm, which is how OVS's
// userspace datapath reads a veth. It reports whether the captured UDP
// checksum is valid.
func udpChecksumSeen(tb testing.TB, vm, ctr *testNS, hostEnd, dst string) bool {
	tb.Helper()
	var fd int
	vm.must(tb, "open packet socket on "+hostEnd, func() error {
		l, err := netlink.LinkByName(hostEnd)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_IP))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: l.Attrs().Index}); err != nil {
			unix.Close(fd)
			return err
		}
		// Short receive timeouts only let the loop below look at the test's time.
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	})
	defer unix.Close(fd)
	ctx := testutil.Context(tb)

	payload := []byte("checksum probe, odd length!")
	ctr.must(tb, "send udp to "+dst, func() error {
		c, err := net.Dial("udp4", net.JoinHostPort(dst, "9"))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	})

	buf := make([]byte, 2048)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			if ctx.Err() != nil {
				tb.Fatalf("capture udp on %s: nothing came when the test's time was up", hostEnd)
			}
			continue
		}
		if err != nil {
			tb.Fatalf("capture udp on %s: %v", hostEnd, err)
		}
		ip := buf[:n]
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != unix.IPPROTO_UDP {
			continue
		}
		ihl := int(ip[0]&0x0f) * 4
		udp := ip[ihl:]
		if len(udp) < 8 || binary.BigEndian.Uint16(udp[2:4]) != 9 {
			continue
		}
		udp = udp[:binary.BigEndian.Uint16(udp[4:6])]
		return checksum(ip[12:20], udp) == 0xffff
	}
}

// checksum folds the UDP pseudo-header (addresses, protocol, length) and the
// UDP segment into a one's complement sum; a correct segment sums to 0xffff.
func checksum(addrs, udp []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(addrs)
	sum += unix.IPPROTO_UDP + uint32(len(udp))
	add(udp)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// htons converts to network byte order, as AF_PACKET wants the protocol.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// isErr is errors.Is for table tests whose expected error may be nil.
func isErr(err, target error) bool { return target == nil || errors.Is(err, target) }
