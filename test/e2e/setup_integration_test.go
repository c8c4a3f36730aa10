//go:build integration

package e2e

import (
	"bufio"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// vmLayout is what setup may change in a VM: addresses, routes, the uplink's flags and
// IPv6 switch, the OVS bridges and their ports.
func vmLayout(t *testing.T, vm *testutil.VM) string {
	t.Helper()
	var b strings.Builder
	for _, c := range [][]string{
		{"ip", "-o", "addr", "show"},
		{"ip", "-o", "route", "show"},
		{"ip", "-o", "link", "show", "eth0"},
		{"cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"},
		{"ovs-vsctl", "--db=" + vm.OVSDB(), "list-br"},
	} {
		b.WriteString(vm.Run(t, c[0], c[1:]...))
	}
	if out, err := vm.Try("ovs-vsctl", "--db="+vm.OVSDB(), "list-ports", "br0"); err == nil {
		b.WriteString("br0 ports: " + out)
	}
	return b.String()
}

// vmPort is the stack's record of the VM's port: address, prefix length, gateway.
func vmPort(t *testing.T, s *testutil.Stack, vm *testutil.VM) (ip, prefix, mac, gw string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, vm.Name, "port"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b)) // port_id mac ip prefix mtu gw tenant
	if len(f) < 6 {
		t.Fatalf("port record of %s: %q", vm.Name, b)
	}
	return f[2], f[3], f[1], f[5]
}

// pinger pings from a VM every 100 ms and records which echoes came back.
type pinger struct {
	cmd     *exec.Cmd
	replies chan int
	seen    map[int]bool
	max     int
}

func startPinger(t *testing.T, vm *testutil.VM, addr string) *pinger {
	t.Helper()
	p := &pinger{cmd: exec.Command("ip", "netns", "exec", vm.Name, "ping", "-n", "-i", "0.1", addr),
		replies: make(chan int, 1024), seen: map[int]bool{}}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	re := regexp.MustCompile(`icmp_seq=(\d+) `)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.Atoi(m[1])
				p.replies <- n
			}
		}
		_, _ = io.Copy(io.Discard, out)
		close(p.replies)
	}()
	return p
}

// await waits for n more replies (the kernel's answers, not a clock).
func (p *pinger) await(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		seq, ok := <-p.replies
		if !ok {
			t.Fatal("ping ended")
		}
		p.seen[seq] = true
		p.max = max(p.max, seq)
	}
}

// lost are the echoes between the first and the last answered that got no answer.
func (p *pinger) lost() []int {
	var out []int
	first := p.max
	for s := range p.seen {
		first = min(first, s)
	}
	for s := first; s <= p.max; s++ {
		if !p.seen[s] {
			out = append(out, s)
		}
	}
	return out
}

// packagedBinary is ovn-docker as the .deb CI built installs it (OVN_DOCKER_E2E_DEB,
// unpacked into a root of its own), else the test's own build.
func packagedBinary(t *testing.T) string {
	t.Helper()
	deb := os.Getenv("OVN_DOCKER_E2E_DEB")
	if deb == "" {
		t.Log("OVN_DOCKER_E2E_DEB unset: the test's own build stands in for the package's")
		return bin
	}
	root := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	return filepath.Join(root, "usr", "bin", "ovn-docker")
}

// TestSetupFromCloudImage: a VM as a cloud image boots (its address on eth0, no bridge,
// its DNS server and domain held per link by systemd-resolved). A setup whose check
// fails, before or after the move, leaves it exactly as it was; a setup that works keeps
// every ping of the gateway answered and names resolving through the bridge, the second
// one changes nothing, doctor is then green and the spec's workflow works in it.
func TestSetupFromCloudImage(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm, peer := vms[0], vms[1]
	pkg := packagedBinary(t)
	ip, prefix, mac, gw := vmPort(t, s, vm)
	peerIP, _, _, _ := vmPort(t, s, peer)

	// The stack's layout again at the end, whatever happened: br0 with eth0, the address on br0.
	t.Cleanup(func() {
		vsctl := []string{"--db=" + vm.OVSDB()}
		_, _ = vm.Try("ip", "route", "del", "default")
		_, _ = vm.Try("ip", "addr", "flush", "dev", "eth0")
		_, _ = vm.Try("ovs-vsctl", append(vsctl, "--may-exist", "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev", "other-config:hwaddr="+mac)...)
		_, _ = vm.Try("ovs-vsctl", append(vsctl, "--may-exist", "add-port", "br0", "eth0")...)
		_, _ = vm.Try("ip", "link", "set", "eth0", "arp", "off")
		_, _ = vm.Try("ip", "link", "set", "br0", "up")
		_, _ = vm.Try("ip", "addr", "replace", ip+"/"+prefix, "dev", "br0")
		_, _ = vm.Try("ethtool", "-K", "eth0", "tx", "on")
	})
	// Boot it as a cloud image would: no bridge, the address and a default route on eth0.
	vm.Run(t, "ovs-vsctl", "--db="+vm.OVSDB(), "del-br", "br0")
	vm.Run(t, "ip", "link", "set", "eth0", "arp", "on")
	vm.Run(t, "ip", "addr", "add", ip+"/"+prefix, "dev", "eth0")
	vm.Run(t, "ip", "route", "add", "default", "via", gw, "dev", "eth0")
	// A cloud NIC puts complete checksums on the wire; the sandbox's veth leaves them to
	// the hypervisor's userspace switch, which does not fill them in: UDP and TCP sent
	// by the VM's own stack through eth0 would be dropped.
	vm.Run(t, "ethtool", "-K", "eth0", "tx", "off")
	// DNS as DHCP through systemd-networkd leaves it: a server and a domain of eth0's.
	dns := serveDNS(t, peer, map[string]netip.Addr{"peer.setup.test": netip.MustParseAddr(peerIP)})
	rs := startResolved(t, vm)
	rs.mustCtl(t, "dns", "eth0", peerIP)
	rs.mustCtl(t, "domain", "eth0", "setup.test")
	bus := []string{rs.bus}
	resolves := func(t *testing.T) {
		t.Helper()
		n := dns.queries.Load()
		out, err := rs.ctl("query", "--cache=no", "-4", "peer.setup.test")
		if err != nil || !strings.Contains(out, peerIP) || dns.queries.Load() == n {
			t.Fatalf("peer.setup.test does not resolve through %s's DNS server (%d queries reached it): %v\n%s\n%s",
				vm.Name, dns.queries.Load()-n, err, out, rs.mustCtl(t, "status"))
		}
	}
	resolves(t)
	layout := func() string { return vmLayout(t, vm) + rs.mustCtl(t, "dns") + rs.mustCtl(t, "domain") }
	before := layout()
	// The gateway answers (the management subnet has a router): setup checks it too.
	ping := startPinger(t, vm, gw)
	ping.await(t, 3)

	t.Run("an unreachable place is refused before anything changes", func(t *testing.T) {
		r := runBinary(t, pkg, vm, bus, "--standalone", "setup", "--datapath", "netdev", "--reach", "127.0.0.1:1")
		if r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:1 is not reachable even now") || !strings.Contains(r.stderr, "nothing was changed") {
			t.Fatalf("%s", r)
		}
		if after := layout(); after != before {
			t.Fatalf("the VM changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("a check that fails after the move puts the VM back", func(t *testing.T) {
		r := runBinary(t, binFault, vm, append(bus, "OVN_DOCKER_FAULT=setup-check"), "--standalone", "setup", "--datapath", "netdev")
		if r.code != 1 || !strings.Contains(r.stderr, "the VM is as it was before") ||
			!strings.Contains(r.stdout, "will give br0 the DNS of eth0 in systemd-resolved (servers "+peerIP+", domains setup.test)") {
			t.Fatalf("%s", r)
		}
		if after := layout(); after != before {
			t.Fatalf("the VM is not as before:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	ping.await(t, 3)
	if lost := ping.lost(); len(lost) > 0 {
		t.Fatalf("pings lost while setup failed and undid: %v", lost)
	}
	resolves(t)

	r := runBinary(t, pkg, vm, bus, "--standalone", "setup", "--datapath", "netdev")
	if r.code != 0 || !strings.Contains(r.stdout, "eth0 is on br0, which holds ["+ip+"/"+prefix+"]") ||
		!strings.Contains(r.stdout, "the VM's port "+vm.VIFID()+" is the parent of trunk ") ||
		!strings.Contains(r.stdout, "ra guard installed on br0") {
		t.Fatalf("setup: %s", r)
	}
	ping.await(t, 5)
	if lost := ping.lost(); len(lost) > 0 {
		t.Fatalf("pings lost during setup (one every 100 ms): %v of %d", lost, ping.max)
	}
	t.Logf("setup: %d pings of the gateway at 100 ms, none lost", ping.max)
	_ = ping.cmd.Process.Signal(syscall.SIGINT)
	// eth0 holds no address now: resolved asks only the bridge's server.
	if out := rs.mustCtl(t, "dns", "br0"); !strings.Contains(out, peerIP) {
		t.Fatalf("br0 has not eth0's DNS server: %s", out)
	}
	resolves(t)

	set := layout()
	r = runBinary(t, pkg, vm, bus, "--standalone", "setup", "--datapath", "netdev")
	if r.code != 0 || !strings.Contains(r.stdout, "nothing to do") ||
		!strings.Contains(r.stdout, "and the DNS of eth0 (servers "+peerIP+", domains setup.test)") {
		t.Fatalf("setup again: %s", r)
	}
	if again := layout(); again != set {
		t.Fatalf("setup again changed the VM:\nbefore:\n%s\nafter:\n%s", set, again)
	}

	startPlugin(t, vm)
	if _, failed, r := doctorIn(t, vm, nil); len(failed) > 0 {
		t.Fatalf("doctor after setup: failed %v\n%s", failed, r)
	}
	// The spec's workflow: a container here reaches one in the neighbour.
	net := tenantNetwork(t, vm, "setup-"+vm.Name)
	t.Cleanup(func() { cleanVM(t, vm); cleanVM(t, peer) })
	a := runBox(t, vm, "setup-a", []string{"--network", net}, nil)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "rm", "-f", "setup-a") }) // through the agent, before it stops
	b := runBox(t, peer, "setup-b", []string{"--network", net}, nil)
	a.mustPing(t, b.ip().String())
}
