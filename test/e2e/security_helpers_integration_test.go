//go:build integration

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// What the security tests share: containers run by ovn-docker, raw Ethernet frames sent
// from inside a container's network namespace (what any process there may do with
// Docker's default capability NET_RAW: no 8021q module is needed to tag frames), and
// captures that show what a victim's interface really received.

// box is a test's container, run by ovn-docker, with its eth0 as ps shows it.
type box struct {
	vm       *testutil.VM
	name     string
	eth0     psEntry
	pidCache int // the container's main process, once read
}

// runBox runs a busybox container named name in the VM: global are ovn-docker's own
// flags (--network, --security-group...), opts docker run's; cmd defaults to a long sleep.
func runBox(t *testing.T, vm *testutil.VM, name string, global, opts []string, cmd ...string) *box {
	t.Helper()
	return runBoxes(t, boxSpec{vm: vm, name: name, global: global, opts: opts, cmd: cmd})[0]
}

// boxSpec is a container for runBoxes.
type boxSpec struct {
	vm           *testutil.VM
	name         string
	global, opts []string
	cmd          []string
}

// runBoxes runs the containers at the same time (ovn-docker serialises what must be) and
// returns them in order.
func runBoxes(t *testing.T, specs ...boxSpec) []*box {
	t.Helper()
	type done struct {
		r   result
		err error
	}
	results := make([]chan done, len(specs))
	for i, sp := range specs {
		results[i] = make(chan done, 1)
		cmd := sp.cmd
		if len(cmd) == 0 {
			cmd = []string{"sleep", "3600"}
		}
		args := append(append([]string{}, sp.global...), "run", "-d", "--name", sp.name)
		args = append(append(append(args, sp.opts...), "busybox:local"), cmd...)
		go func() {
			r, err := runOVNDocker(sp.vm, args...)
			results[i] <- done{r, err}
		}()
	}
	var failed []string
	for i, sp := range specs {
		d := <-results[i]
		if d.err != nil || d.r.code != 0 {
			failed = append(failed, fmt.Sprintf("%s in %s: %v %s", sp.name, sp.vm.Name, d.err, d.r))
		}
	}
	if len(failed) > 0 {
		t.Fatalf("run:\n%s", strings.Join(failed, "\n"))
	}
	out := make([]*box, len(specs))
	for i, sp := range specs {
		out[i] = &box{vm: sp.vm, name: sp.name, eth0: entryOf(t, sp.vm, sp.name, "eth0")}
	}
	return out
}

// runOVNDocker is ovnDocker for other goroutines than the test's: it reports instead of
// failing the test.
func runOVNDocker(vm *testutil.VM, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := vm.Command(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code, err = ee.ExitCode(), nil
	}
	return r, err
}

func (b *box) ip() netip.Addr { return netip.MustParseAddr(ipOf(b.eth0)) }

func (b *box) mac() net.HardwareAddr {
	m, err := net.ParseMAC(b.eth0.MAC)
	if err != nil {
		panic(err)
	}
	return m
}

func (b *box) String() string {
	return fmt.Sprintf("%s (%s, %s %s)", b.name, b.vm.Name, b.eth0.MAC, ipOf(b.eth0))
}

// exec runs a command in the container.
func (b *box) exec(args ...string) (string, error) {
	return dockerIn(b.vm, append([]string{"exec", b.name}, args...)...)
}

// mustExec runs a command in the container, failing the test when it fails.
func (b *box) mustExec(t *testing.T, args ...string) string {
	t.Helper()
	out, err := b.exec(args...)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", b, strings.Join(args, " "), err, out)
	}
	return out
}

// pings reports whether the container gets an answer to busybox's ping (-I: from that
// source address or interface).
func (b *box) pings(addr string, extra ...string) (bool, string) {
	args := append([]string{"ping", "-c", "3", "-i", "0.2", "-W", "1"}, extra...)
	out, err := b.exec(append(args, addr)...)
	return err == nil, out
}

// mustPing fails the test unless the container reaches addr: the positive control that
// gives every "reaches nothing" its meaning.
func (b *box) mustPing(t *testing.T, addr string) {
	t.Helper()
	if ok, out := b.pings(addr); !ok {
		t.Fatalf("control: %s cannot ping %s:\n%s", b, addr, out)
	}
}

// netns is the path of the container's network namespace.
func (b *box) netns(t *testing.T) string { return fmt.Sprintf("/proc/%d/ns/net", b.pid(t)) }

func (b *box) pid(t *testing.T) int {
	t.Helper()
	if b.pidCache != 0 {
		return b.pidCache
	}
	out, err := dockerIn(b.vm, "inspect", "-f", "{{.State.Pid}}", b.name)
	pid, perr := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || perr != nil || pid <= 0 {
		t.Fatalf("pid of %s: %v %v: %s", b, err, perr, out)
	}
	b.pidCache = pid
	return pid
}

// snmp reads one counter of /proc/net/snmp in the container ("Icmp", "InEchos"): what
// its kernel really received.
func (b *box) snmp(t *testing.T, proto, field string) int {
	t.Helper()
	out := b.mustExec(t, "cat", "/proc/net/snmp")
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
				if err != nil {
					t.Fatalf("%s: /proc/net/snmp %s %s: %q", b, proto, field, f[i+1])
				}
				return v
			}
		}
	}
	t.Fatalf("%s: no %s %s in /proc/net/snmp:\n%s", b, proto, field, out)
	return 0
}

// tenantNetwork creates a network with ovn-docker in the VM's project and deletes it at
// the end of the test. Cleanups run in reverse: a test registers the removal of its
// containers (cleanVM) after this, so that they are gone when the network goes.
func tenantNetwork(t *testing.T, vm *testutil.VM, name string, args ...string) string {
	t.Helper()
	mustOVNDocker(t, vm, append([]string{"create", "network", name}, args...)...)
	t.Cleanup(func() {
		if r := ovnDocker(t, vm, nil, "delete", "network", name); r.code != 0 {
			t.Errorf("delete network %s: %s", name, r)
		}
	})
	return name
}

// rawSock is an AF_PACKET socket bound to an interface of a container's namespace.
type rawSock struct {
	fd   int
	name string
}

// openRaw opens a packet socket on ifName inside the network namespace at nsPath;
// proto 0 only sends, unix.ETH_P_ALL also receives everything.
func openRaw(t *testing.T, nsPath, ifName string, proto uint16) *rawSock {
	t.Helper()
	netns, err := ns.GetNS(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer netns.Close()
	fd := -1
	err = netns.Do(func(ns.NetNS) error {
		ifi, err := net.InterfaceByName(ifName)
		if err != nil {
			return err
		}
		// The socket belongs to the namespace it is made in, whichever thread uses it later.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto)))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			fd = -1
			return fmt.Errorf("bind to %s: %w", ifName, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("raw socket on %s in the netns %s: %v", ifName, nsPath, err)
	}
	s := &rawSock{fd: fd, name: ifName}
	t.Cleanup(func() { unix.Close(fd) })
	return s
}

// sendWindow is how many frames send may put on a port before a fence proves that the
// datapath read them: the userspace datapath reads a veth through a socket buffer of
// its own, which a longer burst could overrun, and a lost frame must not pass for a
// dropped one. sendPaced sends more.
const sendWindow = 32

func (s *rawSock) send(t *testing.T, frames ...[]byte) {
	t.Helper()
	if len(frames) > sendWindow {
		t.Fatalf("%d frames in one burst on %s: more than %d may overrun the datapath's socket, send them with sendPaced", len(frames), s.name, sendWindow)
	}
	for _, f := range frames {
		if _, err := unix.Write(s.fd, f); err != nil {
			t.Fatalf("send a %d-byte frame on %s: %v", len(f), s.name, err)
		}
	}
}

// sendPaced sends the frames sendWindow at a time, each window followed by a fence to
// rx's container (which is not stopped) that must arrive before the next goes: the
// datapath has then read every frame of the window, in order, and none was lost to a
// full socket.
func (s *rawSock) sendPaced(t *testing.T, f fencer, rx *capture, frames ...[]byte) {
	t.Helper()
	for len(frames) > 0 {
		n := min(len(frames), sendWindow-1)
		s.send(t, frames[:n]...)
		frames = frames[n:]
		rx.await(t, f)
	}
}

// sender is a raw socket in the container, to send frames from it.
func (b *box) sender(t *testing.T) *rawSock { return openRaw(t, b.netns(t), "eth0", 0) }

// capture records every frame a container's eth0 receives.
type capture struct {
	b      *box
	sock   *rawSock
	mu     sync.Mutex
	frames [][]byte
	// arrived is closed (and replaced) at each frame: what waitSeen waits on.
	arrived chan struct{}
	// fences counted as timestamp requests were sent to the container, whose kernel
	// had counted stamps before the first.
	fences, stamps int
	quit           chan struct{}
	once           sync.Once
	done           chan struct{}
}

// listen starts recording what reaches the container's eth0 (not what it sends).
func (b *box) listen(t *testing.T) *capture {
	t.Helper()
	s := openRaw(t, b.netns(t), "eth0", unix.ETH_P_ALL)
	// A receive timeout only so that the loop sees quit: how often it looks, not how
	// long anything is waited for.
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	c := &capture{b: b, sock: s, arrived: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	t.Cleanup(func() { c.stop() })
	return c
}

func (c *capture) loop() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		select {
		case <-c.quit:
			return
		default:
		}
		n, from, err := unix.Recvfrom(c.sock.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		c.mu.Lock()
		c.frames = append(c.frames, append([]byte(nil), buf[:n]...))
		close(c.arrived)
		c.arrived = make(chan struct{})
		c.mu.Unlock()
	}
}

// stop ends the capture at once and returns what it recorded. That something did not
// arrive means something only once a fence has arrived after it: see fence.
func (c *capture) stop() [][]byte {
	c.once.Do(func() { close(c.quit) })
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.frames
}

// seen returns the frames received so far that match.
func (c *capture) seen(match func(frame) bool) []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.matching(match)
}

func (c *capture) matching(match func(frame) bool) []frame {
	var out []frame
	for _, b := range c.frames {
		if f, ok := parseFrame(b); ok && match(f) {
			out = append(out, f)
		}
	}
	return out
}

// waitSeen waits for a matching frame, for a positive control: as long as the test may
// run (the frame comes when it comes), false once the test's time is up.
func (c *capture) waitSeen(t *testing.T, match func(frame) bool) bool {
	t.Helper()
	return waitArrived(t, &c.mu, &c.arrived, func() bool { return len(c.matching(match)) > 0 })
}

// waitArrived waits until found (called holding mu) holds, looking again at each frame
// a capture's arrived channel announces, as long as the test may run.
func waitArrived(t *testing.T, mu *sync.Mutex, arrived *chan struct{}, found func() bool) bool {
	ctx := testutil.Context(t)
	for {
		mu.Lock()
		ok, next := found(), *arrived
		mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-next:
		case <-ctx.Done():
			return false
		}
	}
}

// fencer sends a fence carrying m to the container to: a frame the network must
// deliver, sent last on the path of what came before it. stamps: the receiving kernel
// counts it as an ICMP timestamp request, which tells when it has taken it.
type fencer struct {
	send   func(t *testing.T, to *box, m []byte)
	stamps bool
}

// queryFence is the usual fencer: an ICMP timestamp request under b's own MAC and
// address, sent on tx (b's own eth0, so that it follows the frames b sent before). It is
// an ICMP query as an echo request is, which groups and conntrack let pass alike, but the
// receiving kernel counts it apart (InTimestamps): its echo counters count attacks only.
func (b *box) queryFence(tx *rawSock) fencer {
	return fencer{stamps: true, send: func(t *testing.T, to *box, m []byte) {
		t.Helper()
		tx.send(t, ether(to.mac(), b.mac(), 0x0800, icmpTimestamp(b.ip(), to.ip(), m)))
	}}
}

// arpFence is an ARP reply under b's own MAC and address, unicast to the receiver,
// carrying m after the ARP fields: security groups filter IP only, so it reaches a
// container whose groups let nothing in.
func (b *box) arpFence(tx *rawSock) fencer {
	return fencer{send: func(t *testing.T, to *box, m []byte) {
		t.Helper()
		tx.send(t, ether(to.mac(), b.mac(), 0x0806, append(arpPacket(2, b.mac(), b.ip(), to.mac(), to.ip()), m...)))
	}}
}

// await sends a fence through f to the capture's container and waits until it arrives.
func (c *capture) await(t *testing.T, f fencer) {
	t.Helper()
	if f.stamps && c.fences == 0 {
		c.stamps = c.b.snmp(t, "Icmp", "InTimestamps")
	}
	m := marker(t, "fence")
	f.send(t, c.b, m)
	if f.stamps {
		c.fences++
	}
	if !c.waitSeen(t, withMarker(m)) {
		t.Fatalf("%s did not receive the fence: what it did not receive before proves nothing", c.b)
	}
}

// fence closes negative checks: it sends a fence through f to each capture's container,
// waits until each has arrived, ends the captures, and waits until each container's
// kernel has taken its fences. The frames sent before a fence on the same path, in
// order, have then all had their chance to reach the capture and the kernel, however
// slow the machine: what is not there did not come.
func fence(t *testing.T, f fencer, caps ...*capture) {
	t.Helper()
	for _, c := range caps {
		c.await(t, f)
	}
	for _, c := range caps {
		c.stop()
		c.taken(t)
	}
}

// taken waits until the container's kernel has taken the capture's fences (the tap sees
// a frame just before the kernel's IP layer does).
func (c *capture) taken(t *testing.T) {
	t.Helper()
	if c.fences == 0 {
		return
	}
	waitUntil(t, fmt.Sprintf("%s's kernel takes %d fence(s)", c.b, c.fences), func() (bool, string) {
		n := c.b.snmp(t, "Icmp", "InTimestamps") - c.stamps
		return n >= c.fences, fmt.Sprintf("%d timestamp requests", n)
	})
}

// frame is a received Ethernet frame, its VLAN tags (if any were left in it) skipped.
type frame struct {
	raw       []byte
	dst, src  net.HardwareAddr
	etherType uint16
	payload   []byte
}

func (f frame) String() string {
	return fmt.Sprintf("%s > %s type %#04x len %d", f.src, f.dst, f.etherType, len(f.raw))
}

func parseFrame(b []byte) (frame, bool) {
	if len(b) < 14 {
		return frame{}, false
	}
	f := frame{raw: b, dst: net.HardwareAddr(b[0:6]), src: net.HardwareAddr(b[6:12])}
	off := 12
	for {
		if len(b) < off+2 {
			return frame{}, false
		}
		et := binary.BigEndian.Uint16(b[off:])
		if et == 0x8100 || et == 0x88a8 {
			off += 4
			continue
		}
		f.etherType, f.payload = et, b[off+2:]
		return f, true
	}
}

// ipv4Src is the source address of an IPv4 frame.
func (f frame) ipv4Src() (netip.Addr, bool) {
	if f.etherType != unix.ETH_P_IP || len(f.payload) < 20 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(f.payload[12:16])), true
}

// arpSender is the sender hardware and protocol address of an ARP frame.
func (f frame) arpSender() (net.HardwareAddr, netip.Addr, bool) {
	if f.etherType != unix.ETH_P_ARP || len(f.payload) < 28 {
		return nil, netip.Addr{}, false
	}
	return net.HardwareAddr(f.payload[8:14]), netip.AddrFrom4([4]byte(f.payload[14:18])), true
}

// Predicates on received frames.

func withMarker(m []byte) func(frame) bool {
	return func(f frame) bool { return bytes.Contains(f.raw, m) }
}

// fromIdentity matches what carries the MAC or the IPv4 address as its source: in the
// Ethernet header, the IPv4 header or an ARP sender field.
func fromIdentity(mac net.HardwareAddr, ip netip.Addr) func(frame) bool {
	return func(f frame) bool {
		if mac != nil && bytes.Equal(f.src, mac) {
			return true
		}
		if src, ok := f.ipv4Src(); ok && ip.IsValid() && src == ip {
			return true
		}
		sha, spa, ok := f.arpSender()
		return ok && ((mac != nil && bytes.Equal(sha, mac)) || (ip.IsValid() && spa == ip))
	}
}

// tcpSYN matches a TCP SYN from the address to the port.
func tcpSYN(src netip.Addr, port int) func(frame) bool {
	return func(f frame) bool {
		s, ok := f.ipv4Src()
		if !ok || s != src || f.payload[9] != 6 {
			return false
		}
		ihl := int(f.payload[0]&0x0f) * 4
		if len(f.payload) < ihl {
			return false
		}
		l4 := f.payload[ihl:]
		return len(l4) >= 14 && int(binary.BigEndian.Uint16(l4[2:])) == port && l4[13]&0x02 != 0
	}
}

func anyOf(ms ...func(frame) bool) func(frame) bool {
	return func(f frame) bool {
		for _, m := range ms {
			if m(f) {
				return true
			}
		}
		return false
	}
}

// Frame builders.

// tag is one VLAN header: tpid 0x8100 (802.1Q) or 0x88a8 (802.1ad).
type tag struct{ tpid, vid uint16 }

func dot1q(vid int) tag { return tag{0x8100, uint16(vid)} }

// ether builds an Ethernet frame, tags outermost first, padded to the 60-byte minimum.
func ether(dst, src net.HardwareAddr, etherType uint16, payload []byte, tags ...tag) []byte {
	b := append(append([]byte{}, dst...), src...)
	for _, tg := range tags {
		b = binary.BigEndian.AppendUint16(b, tg.tpid)
		b = binary.BigEndian.AppendUint16(b, tg.vid&0x0fff)
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	b = append(b, payload...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// icmpEcho is an IPv4 packet with an ICMP echo request carrying data.
func icmpEcho(src, dst netip.Addr, seq uint16, data []byte) []byte {
	return icmpQuery(8, src, dst, seq, data)
}

// icmpTimestamp is an IPv4 packet with an ICMP timestamp request (its three times zero)
// carrying data after them.
func icmpTimestamp(src, dst netip.Addr, data []byte) []byte {
	return icmpQuery(13, src, dst, 0xfe, append(make([]byte, 12), data...))
}

func icmpQuery(typ byte, src, dst netip.Addr, seq uint16, data []byte) []byte {
	icmp := make([]byte, 8, 8+len(data))
	icmp[0] = typ
	binary.BigEndian.PutUint16(icmp[4:], 0x5ec)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	icmp = append(icmp, data...)
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(icmp)))
	binary.BigEndian.PutUint16(ip[4:], seq)
	ip[8], ip[9] = 64, 1 // TTL, ICMP
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:], s4[:])
	copy(ip[16:], d4[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return append(ip, icmp...)
}

// arpPacket is an ARP request (op 1) or reply (op 2) for IPv4 over Ethernet.
func arpPacket(op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	b := []byte{0, 1, 8, 0, 6, 4}
	b = binary.BigEndian.AppendUint16(b, op)
	s4, t4 := spa.As4(), tpa.As4()
	b = append(append(b, sha...), s4[:]...)
	if tha == nil {
		tha = make(net.HardwareAddr, 6)
	}
	return append(append(b, tha...), t4[:]...)
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// marker is a random tag for the payloads of one test's frames.
func marker(t *testing.T, what string) []byte {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return []byte("ovn-docker-security " + what + " " + hex.EncodeToString(b))
}

// strangerMAC is a locally administered MAC no Neutron port has (Neutron's are fa:16:3e).
func strangerMAC(last byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0x5e, 0xc0, 0, 0, last} }
