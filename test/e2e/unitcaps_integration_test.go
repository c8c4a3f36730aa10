//go:build integration

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// unitSettings reads the packaged unit's capability bounding set and NoNewPrivileges.
func unitSettings(t *testing.T) (caps []string, noNewPrivs bool) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "packaging", "systemd", "ovn-docker.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		switch k {
		case "CapabilityBoundingSet":
			caps = strings.Fields(v)
		case "NoNewPrivileges":
			noNewPrivs = v == "yes"
		}
	}
	if len(caps) == 0 {
		t.Fatal("the unit sets no CapabilityBoundingSet")
	}
	return caps, noNewPrivs
}

// capMask is the kernel's mask of the named capabilities (CAP_NET_ADMIN...).
func capMask(t *testing.T, names []string) uint64 {
	t.Helper()
	bits := map[string]int{"CAP_NET_ADMIN": unix.CAP_NET_ADMIN, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
		"CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE, "CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
		"CAP_CHOWN": unix.CAP_CHOWN, "CAP_KILL": unix.CAP_KILL, "CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE}
	var m uint64
	for _, n := range names {
		b, ok := bits[n]
		if !ok {
			t.Fatalf("capability %s: add it to the test's table", n)
		}
		m |= 1 << b
	}
	return m
}

// TestAgentWithTheUnitsCapabilities: the agent run with only the capabilities the
// packaged unit leaves it (and no new privileges, as the unit says) serves Docker's
// containers and a CNI pod: the unit's hardening is what the agent needs.
func TestAgentWithTheUnitsCapabilities(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	caps, nnp := unitSettings(t)
	var keep []string
	for _, c := range caps {
		keep = append(keep, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	// A wrapper the daemon helper runs as its binary: setpriv drops every other capability
	// from the bounding set, as systemd's CapabilityBoundingSet= does, then execs the agent.
	wrapper := filepath.Join(t.TempDir(), "ovn-docker-hardened")
	args := []string{"--bounding-set=-all," + strings.Join(keep, ",")}
	if nnp {
		args = append(args, "--no-new-privs")
	}
	script := fmt.Sprintf("#!/bin/sh\nexec setpriv %s -- %s \"$@\"\n", strings.Join(args, " "), bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ls := uniq("LSH")
	mustOVNDocker(t, vm, "--standalone", "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "--standalone", "delete", "network", ls) })
	d := &pluginDaemon{vm: vm, binary: wrapper, log: filepath.Join(t.TempDir(), vm.Name+"-daemon.log")}
	d.start(t)
	t.Cleanup(func() { d.stop(t) })
	t.Cleanup(func() { cleanAgentVM(t, vm) })

	// The agent holds exactly the unit's capabilities.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	want := capMask(t, caps)
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			got, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if got != want {
				t.Fatalf("the agent's effective capabilities are %#x, the unit's %#x", got, want)
			}
		}
	}

	// Docker's path: a container through the agent, on one of its Docker networks.
	c := uniq("caps")
	mustOVNDocker(t, vm, "--network", ls, "run", "-d", "--name", c, "busybox:local", "sleep", "600")
	e := entryNamed(t, vm, c)
	if e.State != "attached" {
		t.Fatalf("%s: %+v", c, e)
	}
	// The CNI's path: the agent enters the pod's namespace itself.
	n := newCNINet(t, vm, ls)
	p := n.addPod(t)
	if ok, out := testutil.Ping(p.ns, ipOf(e), 3); !ok {
		t.Fatalf("the pod cannot reach the container: %s", out)
	}
	ctx := testutil.Context(t)
	if err := n.lib.CheckNetworkList(ctx, n.list, p.rt); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := n.lib.DelNetworkList(ctx, n.list, p.rt); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	mustOVNDocker(t, vm, "rm", "-f", c)
	if b, _ := os.ReadFile(d.log); strings.Contains(string(b), "operation not permitted") {
		t.Fatalf("the agent was refused something:\n%s", b)
	}
}
