//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// The agent's own paths: Docker's commands on a network that keeps interfaces ready,
// ovn-docker run through the agent (no sandbox), and the agent and the standalone CLI
// used in turn on one VM.

// statusPools is the pools part of ovn-docker status -f json.
type statusPools struct {
	Pools []struct {
		Network string `json:"network"`
		Ready   int    `json:"ready"`
		Min     int    `json:"min"`
	} `json:"pools"`
}

// readyIn waits until the VM's agent has n interfaces ready on a network's pool, and
// returns their Neutron ports (from ps).
func readyIn(t *testing.T, vm *testutil.VM, n int) map[string]bool {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%d interfaces ready in %s", n, vm.Name), func() (bool, string) {
		out := mustOVNDocker(t, vm, "status", "-f", "json")
		var st statusPools
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, p := range st.Pools {
			ready += p.Ready
		}
		return ready >= n, out
	})
	ports := map[string]bool{}
	for _, r := range psNotes(t, vm) {
		if r.State == "ready (pool)" {
			ports[r.Port] = true
		}
	}
	return ports
}

// entryNamed is the ps entry of a container's only interface.
func entryNamed(t *testing.T, vm *testutil.VM, name string) psEntry {
	t.Helper()
	for _, r := range ps(t, vm) {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("ps in %s shows nothing of %s: %+v", vm.Name, name, ps(t, vm))
	return psEntry{}
}

// cleanAgentVM removes every container ovn-docker knows in the VM and the Docker networks
// of its plugin (a test's own cleanup).
func cleanAgentVM(t *testing.T, vm *testutil.VM) {
	t.Helper()
	out, _ := dockerIn(vm, "ps", "-aq", "--filter", "label=org.ovn-docker.vm")
	for _, id := range strings.Fields(out) {
		ovnDocker(t, vm, nil, "rm", "-f", id)
	}
	out, _ = dockerIn(vm, "network", "ls", "-q", "--filter", "driver=ovn")
	for _, id := range strings.Fields(out) {
		_, _ = dockerIn(vm, "network", "rm", id)
	}
	cleanVM(t, vm)
}

// TestAgentWarmDockerRun: docker's own commands on a network made with -o pool.min take
// an interface made ready before (no Neutron port made for the container); a stopped
// container keeps its port and comes back to it; removed, by any means, it lets it go
// within moments, and the pool is made up again.
func TestAgentWarmDockerRun(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	startPlugin(t, vm)
	t.Cleanup(func() { cleanAgentVM(t, vm) })
	nc := s.Network(t, "tenant-a")
	ls := uniq("LSW")
	mustOVNDocker(t, vm, "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "delete", "network", ls) })
	opt := "neutron.net.name=" + ls
	pluginNetwork(t, vm, ls, "-o", opt, "--ipam-opt", opt, "-o", "pool.min=2", "-o", "pool.max=3")

	ready := readyIn(t, vm, 2)
	a, b := uniq("wa"), uniq("wb")
	runIn(t, vm, a, "--network", ls, "busybox:local", "sleep", "600")
	ea := entryNamed(t, vm, a)
	if !ready[ea.Port] {
		t.Fatalf("%s got port %s, not one of the pool's ready ones %v: a Neutron port was made for it", a, ea.Port, ready)
	}
	if ea.State != "attached" {
		t.Fatalf("%s: state %q", a, ea.State)
	}
	runIn(t, vm, b, "--network", ls, "--restart=always", "busybox:local", "sleep", "600")
	eb := entryNamed(t, vm, b)
	if ok, out := pingFrom(t, vm, a, ipOf(eb)); !ok {
		t.Fatalf("%s cannot reach %s at once: %s", a, b, out)
	}

	// Stopped, a container keeps its port; started again, it has the same MAC and address.
	mustDocker(t, vm, "stop", "-t", "0", a)
	if e := entryNamed(t, vm, a); e.Port != ea.Port || e.State != "stopped (port kept)" {
		t.Fatalf("stopped %s: %+v, want its port %s kept", a, e, ea.Port)
	}
	if l := leftOf(t, vm, nc, ea); !strings.Contains(l, "neutron port") || !strings.Contains(l, "subport") {
		t.Fatalf("stopped %s lost its port: it holds %q", a, l)
	}
	mustDocker(t, vm, "start", a)
	if mac, addr := ifaceIn(t, vm, a, "eth0"); mac != ea.MAC || addr != ea.IPs[0] {
		t.Fatalf("%s started again with %s %s, want %s %s", a, mac, addr, ea.MAC, ea.IPs[0])
	}
	if ok, out := pingFrom(t, vm, a, ipOf(eb)); !ok {
		t.Fatalf("%s started again cannot reach %s: %s", a, b, out)
	}

	// Removed: docker rm -f of a running one, docker rm of a stopped one, and the end of
	// a docker run --rm.
	mustDocker(t, vm, "rm", "-f", a)
	took := waitUntil(t, a+" released after docker rm -f", func() (bool, string) { l := leftOf(t, vm, nc, ea); return l == "", l })
	t.Logf("docker rm -f: %s's port released %s after the command returned", a, fmtMS(took))
	mustDocker(t, vm, "stop", "-t", "0", b)
	mustDocker(t, vm, "rm", b)
	took = waitUntil(t, b+" released after docker rm", func() (bool, string) { l := leftOf(t, vm, nc, eb); return l == "", l })
	t.Logf("docker rm of a stopped container: %s's port released %s after the command returned", b, fmtMS(took))
	readyIn(t, vm, 2)
	mustDocker(t, vm, "run", "--rm", "--network", ls, "busybox:local", "true")
	took = waitUntil(t, "the docker run --rm's port released", func() (bool, string) {
		var held []string
		for _, r := range psNotes(t, vm) {
			if r.State != "ready (pool)" {
				held = append(held, r.Name+" "+r.State)
			}
		}
		return len(held) == 0, strings.Join(held, ", ")
	})
	t.Logf("docker run --rm: its port released %s after the command returned", fmtMS(took))
	// The pool is made up again, with ports other than the ones used.
	readyIn(t, vm, 2)
	mustDocker(t, vm, "network", "rm", ls)
	waitUntil(t, "the pool released with its network", func() (bool, string) {
		f := measure(t, s, vm)
		return f.empty(), fmt.Sprintf("%+v", f)
	})
	assertClean(t, s, vm)
}

// TestAgentCLIRun: with the agent, ovn-docker run puts the container on a Docker network
// of the plugin (no sandbox), from the pool when there is one, with the same results as
// the standalone CLI; ps, rm and a foreground --rm run work through the agent.
func TestAgentCLIRun(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	ls := uniq("LSA")
	// The agent keeps a pool of the network (--pool, by name), made before it starts.
	mustOVNDocker(t, vm, "--standalone", "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "--standalone", "delete", "network", ls) })
	d := startPlugin(t, vm, "--pool", ls+":1:2")
	// Last first: the containers go, then the agent, then what its pool keeps ready.
	t.Cleanup(func() {
		d.stop(t)
		mustOVNDocker(t, vm, "--standalone", "gc", "--drain-pools")
	})
	t.Cleanup(func() { cleanAgentVM(t, vm) })
	ready := readyIn(t, vm, 1)
	// The local API acts with the agent's credentials: root only.
	sock := filepath.Join(vm.Env["OVN_DOCKER_STATE_DIR"], "agent.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the agent's socket %s: %v %v, want a socket of mode 0600", sock, fi.Mode(), err)
	} else if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 0 {
		t.Fatalf("the agent's socket %s is not root's", sock)
	}

	c1, c2 := uniq("ca"), uniq("cb")
	id := strings.TrimSpace(mustOVNDocker(t, vm, "--network", ls, "run", "-d", "--name", c1, "busybox:local", "sleep", "600"))
	e1 := entryNamed(t, vm, c1)
	if !ready[e1.Port] || e1.Container != id {
		t.Fatalf("%s: %+v, want the pool's port (%v) and container %s", c1, e1, ready, id)
	}
	mode := strings.TrimSpace(mustDocker(t, vm, "inspect", "-f", "{{.HostConfig.NetworkMode}}", c1))
	if strings.HasPrefix(mode, "container:") || mode == "none" {
		t.Fatalf("%s runs in network mode %q: through the agent it is on a Docker network of the plugin", c1, mode)
	}
	if out, _ := dockerIn(vm, "ps", "-aq", "--filter", "label=org.ovn-docker.role=sandbox"); strings.TrimSpace(out) != "" {
		t.Fatalf("a sandbox container was made through the agent: %s", out)
	}
	mustOVNDocker(t, vm, "--network", ls, "run", "-d", "--name", c2, "busybox:local", "sleep", "600")
	e2 := entryNamed(t, vm, c2)
	if e1.VLAN == e2.VLAN || e1.Port == e2.Port {
		t.Fatalf("two containers share a VLAN or a port: %+v %+v", e1, e2)
	}
	if ok, out := pingFrom(t, vm, c1, ipOf(e2)); !ok {
		t.Fatalf("%s cannot reach %s: %s", c1, c2, out)
	}
	// A foreground run with --rm: its output, its exit code, nothing left of it.
	r := ovnDocker(t, vm, nil, "--network", ls, "run", "--rm", "busybox:local", "sh", "-c", "echo hello; exit 3")
	if r.code != 3 || strings.TrimSpace(r.stdout) != "hello" {
		t.Fatalf("foreground run: %s, want hello and exit 3", r)
	}
	mustOVNDocker(t, vm, "rm", "-f", c1, c2)
	if !agentSaid(d, "endpoint") {
		t.Fatal("the agent's plugin never saw an endpoint: the runs did not go through it")
	}
	waitUntil(t, "everything released", func() (bool, string) {
		var held []string
		for _, r := range psNotes(t, vm) {
			if r.State != "ready (pool)" {
				held = append(held, r.Name+" "+r.State)
			}
		}
		return len(held) == 0, strings.Join(held, ", ")
	})
}

// TestAgentAndStandaloneInTurn: the agent and the standalone CLI used in turn on one VM
// share the VM's state: their containers never share a VLAN or a port, and each releases
// what the other made.
func TestAgentAndStandaloneInTurn(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	ls := uniq("LST")
	mustOVNDocker(t, vm, "--standalone", "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "--standalone", "delete", "network", ls) })
	d := startPlugin(t, vm)
	t.Cleanup(func() { cleanAgentVM(t, vm) })

	viaAgent, viaCLI, whileAway := uniq("ag"), uniq("st"), uniq("aw")
	mustOVNDocker(t, vm, "--network", ls, "run", "-d", "--name", viaAgent, "busybox:local", "sleep", "600")
	mustOVNDocker(t, vm, "--standalone", "--network", ls, "run", "-d", "--name", viaCLI, "busybox:local", "sleep", "600")
	d.stop(t)
	mustOVNDocker(t, vm, "--network", ls, "run", "-d", "--name", whileAway, "busybox:local", "sleep", "600")
	d.start(t)

	rows := ps(t, vm)
	vlans, ports := map[int]string{}, map[string]string{}
	for _, r := range rows {
		if other, ok := vlans[r.VLAN]; ok {
			t.Fatalf("%s and %s share VLAN %d", other, r.Name, r.VLAN)
		}
		if other, ok := ports[r.Port]; ok {
			t.Fatalf("%s and %s share port %s", other, r.Name, r.Port)
		}
		vlans[r.VLAN], ports[r.Port] = r.Name, r.Name
	}
	if len(rows) != 3 {
		t.Fatalf("ps shows %d interfaces, want 3: %+v", len(rows), rows)
	}
	ea, es, ew := entryNamed(t, vm, viaAgent), entryNamed(t, vm, viaCLI), entryNamed(t, vm, whileAway)
	for _, pair := range [][2]string{{viaAgent, ipOf(es)}, {viaCLI, ipOf(ew)}, {whileAway, ipOf(ea)}} {
		if ok, out := pingFrom(t, vm, pair[0], pair[1]); !ok {
			t.Fatalf("%s cannot reach %s: %s", pair[0], pair[1], out)
		}
	}
	// Each releases the other's.
	mustOVNDocker(t, vm, "--standalone", "rm", "-f", viaAgent)
	mustOVNDocker(t, vm, "rm", "-f", viaCLI, whileAway)
	assertClean(t, s, vm)
}

// TestAgentDockerdRestart: containers with --restart=always of both front ends, on the
// agent's Docker networks (docker run --network, and ovn-docker run through the agent),
// come back after their VM's dockerd restarts with the same port, MAC and address, and
// their very first command reaches a container of another VM.
func TestAgentDockerdRestart(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	startPlugin(t, vm1)
	nc := s.Network(t, "tenant-a")
	ls := uniq("LSR")
	mustOVNDocker(t, vm1, "--standalone", "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm1, nil, "--standalone", "delete", "network", ls) })
	t.Cleanup(func() { cleanAgentVM(t, vm1); cleanVM(t, vm2) })

	peer := uniq("peer")
	mustOVNDocker(t, vm2, "--standalone", "--network", ls, "run", "-d", "--name", peer, "busybox:local", "sleep", "3600")
	target := ipOf(entryOf(t, vm2, peer, "eth0"))
	// Each start of the container pings first, once, and writes down whether it answered.
	// Its ping is not the first process of the start: busybox uses its PID as the echo's
	// ID, and an echo that reuses the tuple of the start before (still tracked) makes the
	// stack's hypervisor abort (OVS 3.1's userspace conntrack, under OVN's ct(nat):
	// conntrack.c conn_update_state), which is the sandbox's fault, not the container's.
	first := fmt.Sprintf("for i in $(seq $((RANDOM %% 200 + 1))); do /bin/true; done; "+
		"if ping -c 1 -W 5 %s >/dev/null; then echo ok >> /first; else echo lost >> /first; fi; exec sleep 3600", target)

	opt := "neutron.net.name=" + ls
	pluginNetwork(t, vm1, ls, "-o", opt, "--ipam-opt", opt)
	viaDocker, viaCLI := uniq("rd"), uniq("rc")
	runIn(t, vm1, viaDocker, "--network", ls, "--restart=always", "busybox:local", "sh", "-c", first)
	mustOVNDocker(t, vm1, "--network", ls, "run", "-d", "--restart=always", "--name", viaCLI, "busybox:local", "sh", "-c", first)
	before := map[string]psEntry{viaDocker: entryNamed(t, vm1, viaDocker), viaCLI: entryNamed(t, vm1, viaCLI)}
	// What the starts wrote so far; nothing until the first one has (cat's complaint
	// about a missing file is not an answer).
	firsts := func(c string) string {
		out, err := dockerIn(vm1, "exec", c, "cat", "/first")
		if err != nil {
			return ""
		}
		return strings.Join(strings.Fields(out), " ")
	}
	for c := range before {
		c := c
		waitUntil(t, c+"'s first ping", func() (bool, string) { f := firsts(c); return f != "", f })
		if f := firsts(c); f != "ok" {
			t.Fatalf("%s's first command: %q", c, f)
		}
	}

	restartDockerd(t, s, vm1)
	for c, e := range before {
		c, e := c, e
		took := waitUntil(t, c+" runs again", func() (bool, string) {
			f := firsts(c)
			return strings.Count(f, " ")+1 == 2, f
		})
		if f := firsts(c); f != "ok ok" {
			t.Fatalf("%s's first command after dockerd restarted: %q (its first ping did not go through)", c, f)
		}
		if mac, addr := ifaceIn(t, vm1, c, "eth0"); mac != e.MAC || addr != e.IPs[0] {
			t.Fatalf("%s came back with %s %s, want %s %s", c, mac, addr, e.MAC, e.IPs[0])
		}
		if now := entryNamed(t, vm1, c); now.Port != e.Port || now.VLAN != e.VLAN {
			t.Fatalf("%s came back on %+v, before %+v", c, now, e)
		}
		t.Logf("after dockerd restarted, %s ran again with its port %s, MAC and address in %s, its first ping through", c, e.Port, fmtMS(took))
	}
	if f := measure(t, s, vm1); len(f.neutronPorts) != 2 || len(f.subports) != 2 {
		t.Fatalf("after the restart %s holds %+v, want the two ports only", vm1.Name, f)
	}
	mustOVNDocker(t, vm1, "rm", "-f", viaDocker, viaCLI)
	// The Docker network's container: its port may be in the plugin's own release (a
	// parked port's check) when rm comes, and goes a moment later.
	for _, e := range before {
		waitUntil(t, e.Name+" released", func() (bool, string) { l := leftOf(t, vm1, nc, e); return l == "", l })
	}
}

// TestAgentKilledDockerPath: the agent killed (SIGKILL) while Docker removes containers of
// its networks (docker rm -f of a running one, docker rm of a stopped one, the end of a
// docker run --rm): once it is back nothing is lost (the others keep their ports) and
// nothing is left.
func TestAgentKilledDockerPath(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	// A short grace: what Docker forgot while the agent was dead goes at the first pass.
	d := startPlugin(t, vm, "--reconcile-grace", "2s", "--reconcile-every", "2s")
	t.Cleanup(func() { cleanAgentVM(t, vm) })
	nc := s.Network(t, "tenant-a")
	ls := uniq("LSK")
	mustOVNDocker(t, vm, "--standalone", "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "--standalone", "delete", "network", ls) })
	opt := "neutron.net.name=" + ls
	pluginNetwork(t, vm, ls, "-o", opt, "--ipam-opt", opt)

	running, stopped, keep := uniq("kr"), uniq("ks"), uniq("kk")
	for _, c := range []string{running, stopped, keep} {
		runIn(t, vm, c, "--network", ls, "busybox:local", "sleep", "600")
	}
	er, es, ek := entryNamed(t, vm, running), entryNamed(t, vm, stopped), entryNamed(t, vm, keep)
	mustDocker(t, vm, "stop", "-t", "0", stopped)

	d.kill9(t)
	// Docker cannot reach the plugin: it removes the containers all the same.
	_, _ = dockerIn(vm, "rm", "-f", running)
	_, _ = dockerIn(vm, "rm", stopped)
	if l := leftOf(t, vm, nc, er); !strings.Contains(l, "neutron port") {
		t.Fatalf("%s's port went while no agent ran: %s", running, l)
	}
	d.start(t)
	took := waitUntil(t, "the agent back releases what Docker removed meanwhile", func() (bool, string) {
		l1, l2 := leftOf(t, vm, nc, er), leftOf(t, vm, nc, es)
		return l1 == "" && l2 == "", running + ": " + l1 + "; " + stopped + ": " + l2
	})
	t.Logf("the agent back released the containers Docker removed while it was dead %s after it answered", fmtMS(took))
	if l := leftOf(t, vm, nc, ek); !strings.Contains(l, "neutron port") || !strings.Contains(l, "subport") {
		t.Fatalf("%s, which runs, lost its port: it holds %q", keep, l)
	}
	if ok, out := pingFrom(t, vm, keep, strings.SplitN(ek.IPs[0], "/", 2)[0]); !ok {
		t.Fatalf("%s does not answer itself: %s", keep, out)
	}
	mustDocker(t, vm, "rm", "-f", keep)
	waitUntil(t, keep+" released", func() (bool, string) { l := leftOf(t, vm, nc, ek); return l == "", l })
}
