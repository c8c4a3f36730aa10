//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// The agent follows the containers of ovn-docker run through Docker's events. These
// tests make their containers with --standalone, in the CLI's own process: the agent
// only watches them, as it does containers made while it was not running.

// standalone runs ovn-docker in the VM in its own process, not through the agent.
func standalone(t *testing.T, vm *testutil.VM, args ...string) string {
	t.Helper()
	return strings.TrimSpace(mustOVNDocker(t, vm, append([]string{"--standalone"}, args...)...))
}

// lcEntry is a ps row with the agent's note.
type lcEntry struct {
	psEntry
	Note  string `json:"note"`
	Error string `json:"error"`
}

func psNotes(t *testing.T, vm *testutil.VM) []lcEntry {
	t.Helper()
	var rows []lcEntry
	if err := json.Unmarshal([]byte(mustOVNDocker(t, vm, "ps", "-f", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// waitUntil polls cond until it holds and returns how long that took. The only bound is
// the test's own time: when it runs out, the test fails with what cond said last.
func waitUntil(t *testing.T, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	ctx := testutil.Context(t)
	t0 := time.Now()
	for {
		ok, detail := cond()
		if ok {
			return time.Since(t0)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not after %s: %s", what, time.Since(t0).Round(time.Millisecond), detail)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leftOf says what is left of an interface: its Neutron port, subport, access port,
// veth, attachment, and its sandbox container ("" when nothing).
func leftOf(t *testing.T, vm *testutil.VM, nc *gophercloud.ServiceClient, e psEntry) string {
	t.Helper()
	var left []string
	if _, err := ports.Get(context.Background(), nc, e.Port).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		left = append(left, "neutron port "+e.Port)
	}
	if _, ok := subportVLANs(t, nc, vm)[e.Port]; ok {
		left = append(left, "subport "+e.Port)
	}
	if out := vm.VSCtl(t, "--bare", "--columns=name", "find", "port", "name="+e.HostIf); strings.TrimSpace(out) != "" {
		left = append(left, "ovs port "+e.HostIf)
	}
	if _, err := runQuiet("ip", "-n", vm.Name, "link", "show", e.HostIf); err == nil {
		left = append(left, "veth "+e.HostIf)
	}
	for _, r := range ps(t, vm) {
		if r.Port == e.Port {
			left = append(left, "attachment of "+r.Name)
		}
	}
	if out, err := dockerIn(vm, "inspect", "-f", "{{.Id}}", e.Sandbox); err == nil {
		left = append(left, "sandbox "+strings.TrimSpace(out)[:12])
	}
	return strings.Join(left, ", ")
}

// agentSaid reports whether the agent's log has a line with all of the words.
func agentSaid(d *pluginDaemon, words ...string) bool {
	b, _ := os.ReadFile(d.log)
	for _, l := range strings.Split(string(b), "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(l, w)
		}
		if all {
			return true
		}
	}
	return false
}

// TestLifecycleRemovedReleases: with the agent running, a container of ovn-docker run
// that Docker removes, whichever way, has its port, subport, access port, veth, VLAN
// and sandbox released with no gc, within moments; a stopped one keeps all of them.
func TestLifecycleRemovedReleases(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	d := startPlugin(t, vm)
	nc := s.Network(t, "tenant-a")
	ls := uniq("LSR")
	standalone(t, vm, "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "--standalone", "delete", "network", ls) })
	// Cleanups run last first: the containers go before their network.
	t.Cleanup(func() { cleanVM(t, vm) })

	// (a) run -d --rm of a container that exits: Docker removes it, the agent releases.
	a1 := uniq("rm1")
	standalone(t, vm, "--network", ls, "run", "-d", "--rm", "--name", a1, "busybox:local",
		"sh", "-c", "while [ ! -e /tmp/exit ]; do sleep 0.1; done")
	e := entryOf(t, vm, a1, "eth0")
	mustDocker(t, vm, "exec", a1, "touch", "/tmp/exit")
	took := waitUntil(t, a1+" released once it exited", func() (bool, string) { l := leftOf(t, vm, nc, e); return l == "", l })
	t.Logf("run -d --rm: %s's port %s and the rest released %s after it was told to exit", a1, e.Port, fmtMS(took))

	// The same, exiting at once: its run may not even have named its interfaces yet.
	a2 := uniq("rm2")
	id := standalone(t, vm, "--network", ls, "run", "-d", "--rm", "--name", a2, "busybox:local", "true")
	took = waitUntil(t, a2+" released", func() (bool, string) {
		f := measure(t, s, vm)
		return f.empty(), fmt.Sprintf("%+v", f)
	})
	t.Logf("run -d --rm of a container that exits at once (%s): all released %s after run returned", id[:12], fmtMS(took))

	// (b) docker rm -f, Docker's own command.
	b1 := uniq("rmf")
	standalone(t, vm, "--network", ls, "run", "-d", "--name", b1, "busybox:local", "sleep", "600")
	e = entryOf(t, vm, b1, "eth0")
	mustDocker(t, vm, "rm", "-f", b1)
	took = waitUntil(t, b1+" released after docker rm -f", func() (bool, string) { l := leftOf(t, vm, nc, e); return l == "", l })
	t.Logf("docker rm -f: %s's port %s and the rest released %s after docker rm -f returned", b1, e.Port, fmtMS(took))

	// (c) docker stop: the container keeps everything, and comes back to it.
	c1 := uniq("stop")
	cid := standalone(t, vm, "--network", ls, "run", "-d", "--name", c1, "busybox:local", "sleep", "600")
	e = entryOf(t, vm, c1, "eth0")
	mustDocker(t, vm, "stop", "-t", "0", c1)
	waitUntil(t, "the agent handles "+c1+"'s stop", func() (bool, string) {
		return agentSaid(d, "container stopped", "container="+cid[:12]), "no word of it in the agent's log"
	})
	left := leftOf(t, vm, nc, e)
	for _, want := range []string{"neutron port", "subport", "ovs port", "veth", "attachment", "sandbox"} {
		if !strings.Contains(left, want) {
			t.Fatalf("stopped %s lost its %s: it holds %s", c1, want, left)
		}
	}
	mustDocker(t, vm, "start", c1)
	if mac, addr := ifaceIn(t, vm, c1, "eth0"); mac != e.MAC || addr != e.IPs[0] {
		t.Fatalf("%s started again with eth0 %s %s, want %s %s", c1, mac, addr, e.MAC, e.IPs[0])
	}
	mustOVNDocker(t, vm, "rm", "-f", c1)
	assertClean(t, s, vm)
}

// TestLifecycleDockerdRestart: a container of ovn-docker run with --restart=always comes
// back after its VM's dockerd restarts with the same port, MAC and address, and talks.
func TestLifecycleDockerdRestart(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	d := startPlugin(t, vm1)
	nc := s.Network(t, "tenant-a")
	ls := uniq("LSD")
	standalone(t, vm1, "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm1, nil, "--standalone", "delete", "network", ls) })
	// Cleanups run last first: the containers go before their network.
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })

	c1, c2 := uniq("rs1"), uniq("rs2")
	standalone(t, vm1, "--network", ls, "run", "-d", "--restart=always", "--name", c1, "busybox:local", "sleep", "3600")
	standalone(t, vm2, "--network", ls, "run", "-d", "--name", c2, "busybox:local", "sleep", "3600")
	e1, e2 := entryOf(t, vm1, c1, "eth0"), entryOf(t, vm2, c2, "eth0")
	if ok, out := pingFrom(t, vm1, c1, ipOf(e2)); !ok {
		t.Fatalf("no ping before the restart:\n%s", out)
	}

	restartDockerd(t, s, vm1)
	t0 := time.Now()
	took := waitUntil(t, c1+" back on its network", func() (bool, string) {
		running, _ := dockerIn(vm1, "inspect", "-f", "{{.State.Running}} {{.State.Error}}", c1)
		if !strings.HasPrefix(running, "true") {
			return false, "running: " + strings.TrimSpace(running)
		}
		mac, addr := ifaceIn(t, vm1, c1, "eth0")
		return mac == e1.MAC && addr == e1.IPs[0], "eth0: " + mac + " " + addr
	})
	t.Logf("after dockerd restarted, %s was back on eth0 with %s %s %s later", c1, e1.MAC, e1.IPs[0], fmtMS(took))
	pings := func(vm *testutil.VM, from, to string) func() (bool, string) {
		return func() (bool, string) {
			out, err := dockerIn(vm, "exec", from, "ping", "-c", "1", "-W", "1", to)
			return err == nil, out
		}
	}
	took = waitUntil(t, c1+" pings "+c2, pings(vm1, c1, ipOf(e2)))
	t.Logf("%s pinged %s %s after dockerd was back", c1, c2, fmtMS(time.Since(t0)))
	waitUntil(t, c2+" pings "+c1, pings(vm2, c2, ipOf(e1)))

	// The same port, VLAN and subport; nothing more.
	var now lcEntry
	for _, r := range psNotes(t, vm1) {
		if r.Name == c1 {
			now = r
		}
	}
	if now.Port != e1.Port || now.VLAN != e1.VLAN || now.MAC != e1.MAC || now.IPs[0] != e1.IPs[0] || now.State != "attached" {
		t.Fatalf("after the restart ps shows %+v, before %+v", now, e1)
	}
	if now.Note != "" || now.Error != "" {
		t.Logf("ps says of %s: note %q error %q", c1, now.Note, now.Error)
	}
	if v := subportVLANs(t, nc, vm1)[e1.Port]; v != e1.VLAN {
		t.Fatalf("subport %s has VLAN %d, want %d", e1.Port, v, e1.VLAN)
	}
	if f := measure(t, s, vm1); len(f.neutronPorts) != 1 || len(f.subports) != 1 || len(f.ovsPorts) != 1 || len(f.veths) != 1 ||
		f.attachments != 1 || len(f.sandboxes) != 1 {
		t.Fatalf("after the restart %s holds %+v, want one of each", vm1.Name, f)
	}
	if !agentSaid(d, "plumbed again", e1.Port) {
		t.Errorf("the agent's log does not say it plumbed %s again", e1.Port)
	}
	mustOVNDocker(t, vm1, "rm", "-f", c1)
	mustOVNDocker(t, vm2, "rm", "-f", c2)
	assertClean(t, s, vm1)
	assertClean(t, s, vm2)
}

// TestLifecycleAgentKilled: containers removed while the agent was dead (SIGKILL) are
// released by its reconciliation when it starts again; the others keep their ports.
func TestLifecycleAgentKilled(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	d := startPlugin(t, vm)
	nc := s.Network(t, "tenant-a")
	ls := uniq("LSK")
	standalone(t, vm, "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "--standalone", "delete", "network", ls) })
	// Cleanups run last first: the containers go before their network.
	t.Cleanup(func() { cleanVM(t, vm) })

	k1, k2, k3 := uniq("kl1"), uniq("kl2"), uniq("kl3")
	for _, c := range []string{k1, k2, k3} {
		standalone(t, vm, "--network", ls, "run", "-d", "--name", c, "busybox:local", "sleep", "600")
	}
	e1, e2, e3 := entryOf(t, vm, k1, "eth0"), entryOf(t, vm, k2, "eth0"), entryOf(t, vm, k3, "eth0")

	d.kill9(t)
	mustDocker(t, vm, "rm", "-f", k1)             // its sandbox stays, with nothing in it
	mustDocker(t, vm, "rm", "-f", k2, e2.Sandbox) // both go
	if l := leftOf(t, vm, nc, e1); !strings.Contains(l, "neutron port") {
		t.Fatalf("%s's port went while no agent ran: %s", k1, l)
	}
	d.start(t)
	took := waitUntil(t, "the restarted agent releases "+k1+" and "+k2, func() (bool, string) {
		l1, l2 := leftOf(t, vm, nc, e1), leftOf(t, vm, nc, e2)
		return l1 == "" && l2 == "", k1 + ": " + l1 + "; " + k2 + ": " + l2
	})
	t.Logf("the restarted agent released the containers removed while it was dead %s after it answered", fmtMS(took))
	left := leftOf(t, vm, nc, e3)
	for _, want := range []string{"neutron port", "subport", "ovs port", "veth", "attachment", "sandbox"} {
		if !strings.Contains(left, want) {
			t.Fatalf("%s, which runs, lost its %s: it holds %s", k3, want, left)
		}
	}
	mustOVNDocker(t, vm, "rm", "-f", k3)
	assertClean(t, s, vm)
}
