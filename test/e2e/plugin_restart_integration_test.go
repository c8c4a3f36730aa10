//go:build integration

package e2e

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestPluginDaemonKill9 kills the daemon with SIGKILL while containers run, and once
// more in the middle of a docker run: the containers keep talking, the restarted daemon
// attaches new containers, and each container holds exactly one port, subport, access
// port and veth, with nothing left once all is removed.
func TestPluginDaemonKill9(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	// A short grace, so that what the killed daemon handed out and Docker never took is
	// released within the test.
	fast := []string{"--reconcile-every", "3s", "--reconcile-grace", "5s"}
	d1 := startPlugin(t, vm1, fast...)
	startPlugin(t, vm2)
	nc := s.Network(t, "tenant-a")

	ls := uniq("LSK")
	pluginNetwork(t, vm1, ls)
	neu := neutronNetworkNamed(t, nc, ls)
	adoptNetwork(t, vm2, ls)
	c1, c2, c3, c4 := uniq("kc1"), uniq("kc2"), uniq("kc3"), uniq("kc4")
	runIn(t, vm1, c1, "--network", ls, "busybox:local", "sleep", "600")
	runIn(t, vm2, c2, "--network", ls, "busybox:local", "sleep", "600")
	ip1, ip2 := addressOf(t, vm1, ls, c1), addressOf(t, vm2, ls, c2)
	if ok, out := pingFrom(t, vm1, c1, ip2); !ok {
		t.Fatalf("no ping before the kill:\n%s", out)
	}

	d1.kill9(t)
	if _, err := os.Lstat(d1.socket()); err != nil {
		t.Fatalf("after kill -9 the socket should be left behind: %v", err)
	}
	if ok, out := pingFrom(t, vm2, c2, ip1); !ok {
		t.Fatalf("%s lost %s while the daemon was dead:\n%s", c2, c1, out)
	}
	d1.start(t)
	if ok, out := pingFrom(t, vm1, c1, ip2); !ok {
		t.Fatalf("no ping after the restart:\n%s", out)
	}
	runIn(t, vm1, c3, "--network", ls, "busybox:local", "sleep", "600")
	if ok, out := pingFrom(t, vm1, c3, ip2); !ok {
		t.Fatalf("a container started after the restart cannot ping %s:\n%s", c2, out)
	}

	// Killed again while a docker run waits on it: the run may fail or succeed (Docker
	// retries the call on the restarted daemon); either way nothing is duplicated.
	type result struct {
		out string
		err error
	}
	ran := make(chan result, 1)
	t.Cleanup(func() { _, _ = dockerIn(vm1, "rm", "-f", c4) })
	// The daemon has answered the run's address request when it logs it: Docker's next
	// calls for the run are then the daemon's, and the kill comes in their midst.
	const asked = "method=IpamDriver.RequestAddress"
	calls := logLines(d1.log, asked)
	go func() {
		out, err := dockerIn(vm1, "run", "-d", "--name", c4, "--network", ls, "busybox:local", "sleep", "600")
		ran <- result{out, err}
	}()
	waitLogLine(t, d1.log, asked, calls+1)
	d1.kill9(t)
	d1.start(t)
	res := <-ran
	c4ran := res.err == nil
	t.Logf("docker run across the kill: succeeded=%v %s", c4ran, strings.TrimSpace(dropForwardingWarning(res.out)))

	// What the VM holds: exactly one of each per endpoint Docker has on the network (c1,
	// c3, and c4 when Docker kept its endpoint: a run cut by the kill may keep it
	// whatever docker run said).
	var f footprint
	want := 0
	waitUntil(t, fmt.Sprintf("after two kills, %s holds one of each per endpoint on the network", vm1.Name), func() (bool, string) {
		want = len(inspectEndpoints(t, vm1, ls))
		f = measure(t, s, vm1)
		return want >= 2 && len(f.neutronPorts) == want && len(f.subports) == want && len(f.ovsPorts) == want && len(f.veths) == want && f.attachments == want,
			fmt.Sprintf("%d endpoints on the network; %+v", want, f)
	})
	vlans := map[int]bool{}
	for _, v := range subportVLANs(t, nc, vm1) {
		vlans[v] = true
	}
	if len(vlans) != want {
		t.Fatalf("subport VLANs %v: not %d distinct", vlans, want)
	}
	// The ports are those of the addresses Docker shows.
	var shown []string
	for _, e := range inspectEndpoints(t, vm1, ls) {
		shown = append(shown, portWithIP(t, nc, neu.ID, strings.SplitN(e.IPv4Address, "/", 2)[0]).ID)
	}
	sort.Strings(shown)
	got := append([]string(nil), f.neutronPorts...)
	sort.Strings(got)
	if strings.Join(shown, ",") != strings.Join(got, ",") {
		t.Fatalf("Neutron ports of %s %v, Docker's endpoints' ports %v", vm1.Name, got, shown)
	}

	for _, c := range []string{c1, c3, c4} {
		_, _ = dockerIn(vm1, "rm", "-f", c)
	}
	mustDocker(t, vm2, "rm", "-f", c2)
	mustDocker(t, vm2, "network", "rm", ls)
	mustDocker(t, vm1, "network", "rm", ls)
	assertNetworkGone(t, nc, neu.ID)
	assertPluginClean(t, s, vm1)
	assertPluginClean(t, s, vm2)
}

// TestPluginDockerdRestart stops the VM's dockerd with SIGTERM and starts it again: a
// container with --restart=always comes back on its network (a new port, the old one
// released) and talks to its peer in the other VM.
func TestPluginDockerdRestart(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	startPlugin(t, vm1)
	startPlugin(t, vm2)
	nc := s.Network(t, "tenant-a")

	ls := uniq("LSD")
	pluginNetwork(t, vm1, ls)
	neu := neutronNetworkNamed(t, nc, ls)
	adoptNetwork(t, vm2, ls)
	c1, c2 := uniq("dc1"), uniq("dc2")
	runIn(t, vm1, c1, "--restart=always", "--network", ls, "busybox:local", "sleep", "3600")
	runIn(t, vm2, c2, "--network", ls, "busybox:local", "sleep", "600")
	ip2 := addressOf(t, vm2, ls, c2)
	before := portWithIP(t, nc, neu.ID, addressOf(t, vm1, ls, c1)).ID

	restartDockerd(t, s, vm1)
	var ip1 string
	waitUntil(t, fmt.Sprintf("%s back on %s after the dockerd restart", c1, ls), func() (bool, string) {
		running, _ := dockerIn(vm1, "inspect", "-f", "{{.State.Running}}", c1)
		if strings.TrimSpace(running) != "true" {
			return false, "not running"
		}
		e, ok := inspectEndpoints(t, vm1, ls)[c1]
		if !ok || e.IPv4Address == "" {
			return false, "no endpoint on the network yet"
		}
		ip1 = strings.SplitN(e.IPv4Address, "/", 2)[0]
		return true, ""
	})
	after := portWithIP(t, nc, neu.ID, ip1)
	if mac, _ := ifaceIn(t, vm1, c1, "eth0"); mac != after.MACAddress {
		t.Fatalf("%s's eth0 has MAC %s, its port %s", c1, mac, after.MACAddress)
	}
	if ok, out := pingFrom(t, vm1, c1, ip2); !ok {
		t.Fatalf("%s cannot ping %s after the dockerd restart:\n%s", c1, c2, out)
	}
	if ok, out := pingFrom(t, vm2, c2, ip1); !ok {
		t.Fatalf("%s cannot ping %s after the dockerd restart:\n%s", c2, c1, out)
	}
	if f := measure(t, s, vm1); len(f.neutronPorts) != 1 || f.neutronPorts[0] != after.ID || len(f.subports) != 1 || len(f.ovsPorts) != 1 || len(f.veths) != 1 || f.attachments != 1 {
		t.Fatalf("after the restart %s holds %+v, want only port %s (the old port %s released)", vm1.Name, f, after.ID, before)
	}

	mustDocker(t, vm1, "rm", "-f", c1)
	mustDocker(t, vm2, "rm", "-f", c2)
	mustDocker(t, vm2, "network", "rm", ls)
	mustDocker(t, vm1, "network", "rm", ls)
	assertNetworkGone(t, nc, neu.ID)
	assertPluginClean(t, s, vm1)
	assertPluginClean(t, s, vm2)
}
