//go:build integration

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/mtu"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// Several hypervisors (hack/stack.sh hypervisors N, migrate VM HV): containers whose VMs
// run on different chassis talk through Geneve tunnels over an underlay of MTU 1500, a VM
// moves to another chassis while its containers run, and a chassis' ovn-controller restarts
// under running traffic.

// hypervisorOf is the chassis the VM runs on now (hack/stack.sh keeps it in vmN/hypervisor).
func hypervisorOf(s *testutil.Stack, vm *testutil.VM) string { return s.Hypervisor(vm) }

// hvDir is the hypervisor's OVS folder: hv1 is the root namespace's ($RUN/hv).
func hvDir(s *testutil.Stack, hv string) string {
	if hv == "hv1" {
		return filepath.Join(s.Dir, "hv")
	}
	return filepath.Join(s.Dir, hv)
}

// spreadVMs leases n VMs, each on a hypervisor of its own, and their hypervisors.
func spreadVMs(t *testing.T, s *testutil.Stack, n int) ([]*testutil.VM, []string) {
	t.Helper()
	vms := s.SpreadVMs(t, n)
	var hvs []string
	for _, vm := range vms {
		hvs = append(hvs, s.Hypervisor(vm))
	}
	return vms, hvs
}

// migrate moves the VM with hack/stack.sh and returns its log line.
func migrate(t *testing.T, vm *testutil.VM, hv string) string {
	t.Helper()
	out, err := exec.Command("../../hack/stack.sh", "migrate", vm.Name, hv).CombinedOutput()
	if err != nil {
		t.Fatalf("migrate %s %s: %v\n%s", vm.Name, hv, err, out)
	}
	return strings.TrimSpace(string(out))
}

// tunnelTx is the packet count sent by hv's tunnel port towards chassis to, read live from
// ovs-vswitchd (the database's statistics column lags by seconds).
func tunnelTx(t *testing.T, s *testutil.Stack, hv, to string) int {
	t.Helper()
	port := "ovn-" + to + "-0"
	out := testutil.MustRun(t, "ovs-ofctl", "dump-ports", "unix:"+filepath.Join(hvDir(s, hv), "br-int.mgmt"), port)
	m := regexp.MustCompile(`tx pkts=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: no tx count for tunnel port %s:\n%s", hv, port, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// uplinkTx is the packet count the hypervisor's uplink to the underlay sent, as its kernel
// counts it: what really went on the wire.
func uplinkTx(t *testing.T, hv string) int {
	t.Helper()
	args := []string{"-j", "-s", "link", "show", hv + "-ul"}
	if hv != "hv1" {
		args = append([]string{"-n", hv}, args...)
	}
	out := testutil.MustRun(t, "ip", args...)
	var links []struct {
		Stats64 struct {
			TX struct {
				Packets int `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("%s's uplink: %v\n%s", hv, err, out)
	}
	return links[0].Stats64.TX.Packets
}

// nsPing runs the machine's iputils ping inside the container's namespace (busybox's has no -M).
func nsPing(t *testing.T, from *box, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"--net=" + from.netns(t), "ping", "-n"}, args...)...).CombinedOutput()
	return string(out), err
}

// dfTransfer sends size bytes from one container to another over TCP with DF set on every
// segment (IP_PMTUDISC_DO) and returns the time taken, the sender's MSS and its path MTU.
func dfTransfer(t *testing.T, from, to *box, size int64) (time.Duration, int, int) {
	t.Helper()
	var l net.Listener
	if err := ns.WithNetNSPath(to.netns(t), func(ns.NetNS) error {
		var err error
		l, err = net.Listen("tcp4", net.JoinHostPort(to.ip().String(), "0"))
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", to, err)
	}
	defer l.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	var c net.Conn
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
		})
		return errors.Join(err, serr)
	}}
	if err := ns.WithNetNSPath(from.netns(t), func(ns.NetNS) error {
		var err error
		c, err = d.Dial("tcp4", l.Addr().String())
		return err
	}); err != nil {
		t.Fatalf("connect %s -> %s: %v", from, to, err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	start := time.Now()
	buf := make([]byte, 256<<10)
	var sent int64
	for sent < size {
		n, err := c.Write(buf[:min(int64(len(buf)), size-sent)])
		sent += int64(n)
		if err != nil {
			t.Fatalf("%s -> %s after %d bytes: %v", from, to, sent, err)
		}
	}
	var mss, pmtu int
	rc, _ := c.(*net.TCPConn).SyscallConn()
	_ = rc.Control(func(fd uintptr) {
		mss, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG)
		pmtu, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU)
	})
	_ = c.(*net.TCPConn).CloseWrite()
	n := <-got
	took := time.Since(start)
	c.Close()
	if n != size {
		t.Fatalf("%s -> %s: the receiver got %d of %d bytes", from, to, n, size)
	}
	return took, mss, pmtu
}

// TestHypervisorsGeneve: containers in VMs on three chassis reach each other through the
// Geneve tunnels: ping, 100 MB over TCP with DF at the network's MTU (the one Neutron
// computes for a Geneve network on a 1500-byte underlay), and one byte more refused by
// the sender's own stack instead of vanishing in a tunnel.
func TestHypervisorsGeneve(t *testing.T) {
	s := testutil.LoadStack(t)
	vms, hvs := spreadVMs(t, s, 3)
	t.Cleanup(func() {
		for _, vm := range vms {
			assertClean(t, s, vm)
		}
	})
	name := tenantNetwork(t, vms[0], uniq("geneve"))
	t.Cleanup(func() {
		for _, vm := range vms {
			cleanVM(t, vm)
		}
	})
	var nw struct {
		networks.Network
		mtu.NetworkMTUExt
	}
	nc := s.Network(t, "tenant-a")
	if err := networks.Get(context.Background(), nc, networkID(t, nc, name)).ExtractInto(&nw); err != nil {
		t.Fatal(err)
	}
	// A 1500-byte underlay less Geneve's 38 bytes and the outer IPv4 header.
	if nw.MTU != 1442 {
		t.Fatalf("Neutron gives the Geneve network MTU %d, want 1442 (1500 - 38 - 20)", nw.MTU)
	}
	var specs []boxSpec
	for i, vm := range vms {
		specs = append(specs, boxSpec{vm: vm, name: fmt.Sprintf("gnv-%d", i), global: []string{"--network", name}})
	}
	bs := runBoxes(t, specs...)
	for _, b := range bs {
		if got := strings.TrimSpace(b.mustExec(t, "cat", "/sys/class/net/eth0/mtu")); got != strconv.Itoa(nw.MTU) {
			t.Fatalf("%s: eth0 MTU %s, want the network's %d", b, got, nw.MTU)
		}
	}
	const size = 100 << 20
	for i := range bs {
		for j := range bs {
			if i == j {
				continue
			}
			a, b := bs[i], bs[j]
			a.mustPing(t, b.ip().String())
			// The largest ICMP echo that fits, with DF: it crosses the tunnel whole.
			if out, err := nsPing(t, a, "-M", "do", "-c", "2", "-W", "2", "-s", strconv.Itoa(nw.MTU-28), b.ip().String()); err != nil {
				t.Fatalf("%s -> %s: %d-byte packets with DF do not pass:\n%s", a, b, nw.MTU, out)
			}
			// One byte more: the container's kernel refuses to send it.
			out, err := nsPing(t, a, "-M", "do", "-c", "1", "-W", "2", "-s", strconv.Itoa(nw.MTU-27), b.ip().String())
			if err == nil || !strings.Contains(out, "message too long") {
				t.Fatalf("%s -> %s: a %d-byte packet with DF: %v, want the sender's own \"message too long\":\n%s",
					a, b, nw.MTU+1, err, out)
			}
			if i > j {
				continue // one transfer per pair
			}
			tx0, wire0 := tunnelTx(t, s, hvs[i], hvs[j]), uplinkTx(t, hvs[i])
			took, mss, pmtu := dfTransfer(t, a, b, size)
			tx, wire := tunnelTx(t, s, hvs[i], hvs[j])-tx0, uplinkTx(t, hvs[i])-wire0
			if pmtu != nw.MTU || mss > nw.MTU-40 || mss < nw.MTU-40-12 {
				t.Fatalf("%s -> %s: path MTU %d and MSS %d, want %d and about %d", a, b, pmtu, mss, nw.MTU, nw.MTU-40)
			}
			if least := size / (nw.MTU - 40); tx < least || wire < least {
				t.Fatalf("%s -> %s: %s's tunnel to %s sent %d packets during the transfer, its uplink %d, want at least %d",
					a, b, hvs[i], hvs[j], tx, wire, least)
			}
			t.Logf("%s (%s) -> %s (%s): 100 MB in %v = %.0f Mbit/s, MSS %d, path MTU %d; %d packets on %s's uplink (tunnel port counts %d)",
				a.vm.Name, hvs[i], b.vm.Name, hvs[j], took.Round(time.Millisecond),
				float64(size)*8/took.Seconds()/1e6, mss, pmtu, wire, hvs[i], tx)
		}
	}
}

// fastPing is the machine's ping run in a container's namespace at a fast rate, its replies
// read as they come.
type fastPing struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	replies []reply
	notify  chan struct{}
	summary string
	done    chan struct{}
}

type reply struct {
	seq int
	at  time.Time
}

var replyLine = regexp.MustCompile(`^\[(\d+)\.(\d+)\] \d+ bytes from .*icmp_seq=(\d+)`)

const pingInterval = 10 * time.Millisecond

// startFastPing pings to from the network namespace at nsPath.
func startFastPing(t *testing.T, nsPath, to string) *fastPing {
	t.Helper()
	p := &fastPing{notify: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd = exec.Command("nsenter", "--net="+nsPath, "ping", "-n", "-D", "-i", "0.01", "-W", "1", to)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		var tail []string
		for sc.Scan() {
			line := sc.Text()
			if m := replyLine.FindStringSubmatch(line); m != nil {
				sec, _ := strconv.ParseInt(m[1], 10, 64)
				usec, _ := strconv.ParseInt(m[2], 10, 64)
				seq, _ := strconv.Atoi(m[3])
				p.mu.Lock()
				p.replies = append(p.replies, reply{seq, time.Unix(sec, usec*1000)})
				p.mu.Unlock()
				select {
				case p.notify <- struct{}{}:
				default:
				}
				continue
			}
			tail = append(tail, line)
		}
		p.summary = strings.Join(tail, "\n")
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

// waitReplies waits until n replies sent after since have come back: traffic flows at
// that moment. The test's own deadline is the safety net.
func (p *fastPing) waitReplies(t *testing.T, since time.Time, n int, what string) time.Time {
	t.Helper()
	ctx := testutil.Context(t)
	for {
		p.mu.Lock()
		var after []reply
		for _, r := range p.replies {
			if r.at.After(since) {
				after = append(after, r)
			}
		}
		p.mu.Unlock()
		if len(after) >= n {
			return after[0].at
		}
		select {
		case <-p.notify:
		case <-p.done:
			t.Fatalf("%s: ping ended: %s", what, p.summary)
		case <-ctx.Done():
			t.Fatalf("%s: %d replies by the end of the test's time, want %d", what, len(after), n)
		}
	}
}

// stop ends the ping and returns the packets lost between its first and last reply, the
// longest time without a reply and the reply that ended it.
func (p *fastPing) stop(t *testing.T) (lost int, gap time.Duration, back time.Time) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	<-p.done
	_ = p.cmd.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := append([]reply(nil), p.replies...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].seq < rs[j].seq })
	if len(rs) < 2 {
		t.Fatalf("ping: %d replies: %s", len(rs), p.summary)
	}
	lost = rs[len(rs)-1].seq - rs[0].seq + 1 - len(rs)
	for i := 1; i < len(rs); i++ {
		if d := rs[i].at.Sub(rs[i-1].at); d > gap {
			gap, back = d, rs[i].at
		}
	}
	return lost, gap, back
}

// eth0Of is the container's eth0 as its own kernel has it: MAC and IPv4 address.
func eth0Of(t *testing.T, b *box) string {
	t.Helper()
	mac := strings.TrimSpace(b.mustExec(t, "cat", "/sys/class/net/eth0/address"))
	ip := strings.Fields(b.mustExec(t, "ip", "-4", "-o", "addr", "show", "eth0"))
	return mac + " " + ip[3]
}

// TestHypervisorMigration: a VM moves to another chassis while its containers run. They
// keep their addresses, a continuous ping from a container in another VM comes back after
// an outage the test measures, and the subports follow the VM's port in OVN with nothing
// of ovn-docker running (the CLI made the containers and is gone; no agent runs).
func TestHypervisorMigration(t *testing.T) {
	s := testutil.LoadStack(t)
	vms, hvs := spreadVMs(t, s, 3)
	t.Cleanup(func() {
		for _, vm := range vms {
			assertClean(t, s, vm)
		}
	})
	name := tenantNetwork(t, vms[0], uniq("migr"))
	t.Cleanup(func() {
		for _, vm := range vms {
			cleanVM(t, vm)
		}
	})
	mover, peer, third := vms[2], vms[0], vms[1]
	from, to := hvs[2], hvs[1]
	t.Cleanup(func() { // where the test found it, whatever happened
		if hypervisorOf(s, mover) != from {
			migrate(t, mover, from)
		}
	})
	bs := runBoxes(t,
		boxSpec{vm: mover, name: "mig-a", global: []string{"--network", name}},
		boxSpec{vm: mover, name: "mig-b", global: []string{"--network", name}},
		boxSpec{vm: peer, name: "mig-peer", global: []string{"--network", name}},
		boxSpec{vm: third, name: "mig-third", global: []string{"--network", name}})
	moving, movingB, src, other := bs[0], bs[1], bs[2], bs[3]
	before := map[*box]string{moving: eth0Of(t, moving), movingB: eth0Of(t, movingB)}
	src.mustPing(t, moving.ip().String())

	for _, leg := range []struct{ from, to string }{{from, to}, {to, from}} {
		p := startFastPing(t, src.netns(t), moving.ip().String())
		// The VM's own address too, from the peer VM: its port follows Neutron's binding.
		pvm := startFastPing(t, "/run/netns/"+peer.Name, mover.Env["STACK_VM_IP"])
		p.waitReplies(t, time.Time{}, 20, "before the move")
		pvm.waitReplies(t, time.Time{}, 20, "before the move (VM)")
		t0 := time.Now()
		line := migrate(t, mover, leg.to)
		moved := time.Now()
		p.waitReplies(t, moved, 20, "after the move")
		pvm.waitReplies(t, moved, 20, "after the move (VM)")
		lost, gap, back := p.stop(t)
		vmLost, vmGap, vmBack := pvm.stop(t)
		if hv := hypervisorOf(s, mover); hv != leg.to {
			t.Fatalf("%s is on %s after the move, want %s", mover.Name, hv, leg.to)
		}
		for _, b := range []*box{moving, movingB} {
			if got := eth0Of(t, b); got != before[b] {
				t.Fatalf("%s: eth0 is %s after the move, was %s", b, got, before[b])
			}
			if got := chassisOf(t, s, b.eth0.Port); got != leg.to {
				t.Fatalf("%s: its subport %s is bound on %s, want %s (where its VM is)", b, b.eth0.Port, got, leg.to)
			}
		}
		moving.mustPing(t, other.ip().String())
		movingB.mustPing(t, src.ip().String())
		t.Logf("%s %s -> %s: containers: %d pings lost (every %v), longest silence %v, back %v after the move began; "+
			"the VM's own address: %d lost, longest silence %v, back after %v; %s",
			mover.Name, leg.from, leg.to, lost, pingInterval, gap.Round(time.Millisecond), back.Sub(t0).Round(time.Millisecond),
			vmLost, vmGap.Round(time.Millisecond), vmBack.Sub(t0).Round(time.Millisecond), line)
	}
}

// chassisOf is the chassis on which the SB binds the logical port.
func chassisOf(t *testing.T, s *testutil.Stack, lsp string) string {
	t.Helper()
	sb := "--db=" + s.Env["STACK_SB"]
	ch := strings.TrimSpace(testutil.MustRun(t, "ovn-sbctl", sb, "--bare", "--columns=chassis", "find", "port_binding", "logical_port="+lsp))
	if ch == "" {
		return ""
	}
	return strings.TrimSpace(testutil.MustRun(t, "ovn-sbctl", sb, "--bare", "--columns=name", "list", "chassis", ch))
}

// TestHypervisorOVNControllerRestart: ovn-controller of a chassis stops and starts again
// (as a service restart does) under a continuous ping between containers on two chassis:
// the flows stay in ovs-vswitchd meanwhile, and traffic keeps flowing.
func TestHypervisorOVNControllerRestart(t *testing.T) {
	s := testutil.LoadStack(t)
	vms, hvs := spreadVMs(t, s, 2)
	// Not hv1: its ovn-controller serves every other VM of the stack.
	target, peer, hv := vms[0], vms[1], hvs[0]
	if hv == "hv1" {
		target, peer, hv = vms[1], vms[0], hvs[1]
	}
	t.Cleanup(func() {
		assertClean(t, s, target)
		assertClean(t, s, peer)
	})
	name := tenantNetwork(t, peer, uniq("ctlr"))
	t.Cleanup(func() { cleanVM(t, target); cleanVM(t, peer) })
	bs := runBoxes(t,
		boxSpec{vm: target, name: "ctl-t", global: []string{"--network", name}},
		boxSpec{vm: peer, name: "ctl-p", global: []string{"--network", name}})
	local, remote := bs[0], bs[1]
	remote.mustPing(t, local.ip().String())

	p := startFastPing(t, remote.netns(t), local.ip().String())
	p.waitReplies(t, time.Time{}, 20, "before the restart")
	ctl := hv + "-ovn-controller"
	stack(t, "stop", ctl)
	t.Cleanup(func() { stack(t, "start", ctl) }) // no-op once it runs
	stopped := time.Now()
	// ovn-controller gone: the replies keep coming.
	p.waitReplies(t, stopped, 100, "ovn-controller stopped")
	stack(t, "start", ctl)
	started := time.Now()
	// It reconnected to the SB (start waits for it) and recomputed its flows: still replies.
	p.waitReplies(t, started, 300, "ovn-controller back")
	lost, gap, _ := p.stop(t)
	local.mustPing(t, remote.ip().String())
	// The flows stay while ovn-controller is away; once back, it computes for its grace
	// and then swaps the flows (a delete-all then the adds, not one bundle in OVN 23.03):
	// a loaded machine can lose the packet or two in flight at the swap. What must not
	// happen is a data path cut for the recompute, which is a silence as long as the
	// grace or more (4 packets here without the grace, on a quiet machine).
	grace := ofctrlGrace(t, s, hv)
	if gap >= grace {
		t.Errorf("traffic cut while %s's ovn-controller restarted: %d lost, longest silence %v, not shorter than its grace of %v",
			hv, lost, gap, grace)
	}
	t.Logf("%s's ovn-controller stopped and started under ping every %v: %d lost, longest silence %v (grace %v)",
		hv, pingInterval, lost, gap.Round(time.Millisecond), grace)
}

// ofctrlGrace is how long hv's ovn-controller computes before it swaps its flows
// (external_ids:ovn-ofctrl-wait-before-clear of the hypervisor's Open vSwitch).
func ofctrlGrace(t *testing.T, s *testutil.Stack, hv string) time.Duration {
	t.Helper()
	db := s.Env["STACK_HV_OVSDB"]
	if hv != "hv1" {
		db = "unix:" + filepath.Join(s.Env["STACK_DIR"], hv, "db.sock")
	}
	out := strings.Trim(strings.TrimSpace(testutil.MustRun(t, "ovs-vsctl", "--db="+db, "get", "Open_vSwitch", ".",
		"external_ids:ovn-ofctrl-wait-before-clear")), `"`)
	ms, err := strconv.Atoi(out)
	if err != nil || ms <= 0 {
		t.Fatalf("%s: ovn-ofctrl-wait-before-clear %q: the stack must set it", hv, out)
	}
	return time.Duration(ms) * time.Millisecond
}

// TestHypervisorMigrationBindingProfile: in binding-profile mode (admin) a container port
// is bound to its VM's host, and OVN claims it only there: after the VM moves, the daemon
// (its maintenance pass asks Neutron where the VM's port is) binds the ports to the new
// host on its own, and a continuous ping to the container comes back.
func TestHypervisorMigrationBindingProfile(t *testing.T) {
	s := testutil.LoadStack(t)
	vms, hvs := spreadVMs(t, s, 3)
	mover, peer := vms[2], vms[0]
	from, to := hvs[2], hvs[1]
	t.Cleanup(func() {
		assertClean(t, s, mover)
		assertClean(t, s, peer)
	})
	admin := []string{"OS_USERNAME=admin", "OS_PASSWORD=" + s.Env["OS_PASSWORD"], "OS_PROJECT_NAME=admin",
		"OVN_DOCKER_MODE=binding-profile"}
	d := &pluginDaemon{vm: mover, env: admin, args: []string{"--reconcile-every", "1s"},
		log: filepath.Join(t.TempDir(), mover.Name+"-daemon.log")}
	d.start(t)
	t.Cleanup(func() { d.stop(t) })
	t.Cleanup(func() {
		if hypervisorOf(s, mover) != from {
			migrate(t, mover, from)
		}
	})
	name := tenantNetwork(t, peer, uniq("bpmig"))
	t.Cleanup(func() { cleanVM(t, peer) })
	adoptNetwork(t, mover, name)
	runIn(t, mover, "bp-mig", "--network", name, "busybox:local", "sleep", "3600")
	src := runBox(t, peer, "bp-src", []string{"--network", name}, nil)
	ip := addressOf(t, mover, name, "bp-mig")
	adm := s.Network(t, "admin")
	port := portWithIP(t, adm, networkID(t, adm, name), ip)
	if port.Description == "" {
		t.Fatalf("no ovn-docker port for %s: %+v", ip, port)
	}
	hostOf := func() string {
		return strings.TrimSpace(testutil.MustRun(t, "ovn-nbctl", "--db="+s.Env["STACK_NB"], "get",
			"logical_switch_port", port.ID, "options:requested-chassis"))
	}
	if h := hostOf(); h != from {
		t.Fatalf("the container's port asks for chassis %s, want its VM's %s", h, from)
	}
	src.mustPing(t, ip)
	followed := 0
	for _, hv := range []string{to, from} {
		p := startFastPing(t, src.netns(t), ip)
		p.waitReplies(t, time.Time{}, 20, "before the move")
		t0 := time.Now()
		migrate(t, mover, hv)
		// The daemon notices the move on its own and says so.
		followed++
		waitLogLine(t, d.log, "container ports bound to the VM's new host", followed)
		p.waitReplies(t, time.Now(), 20, "after the daemon followed")
		lost, gap, back := p.stop(t)
		if h := hostOf(); h != hv {
			t.Fatalf("after the move to %s the container's port asks for chassis %s", hv, h)
		}
		t.Logf("binding-profile container, VM moved to %s: %d pings lost (every %v), longest silence %v, back %v after the move began",
			hv, lost, pingInterval, gap.Round(time.Millisecond), back.Sub(t0).Round(time.Millisecond))
	}
}
