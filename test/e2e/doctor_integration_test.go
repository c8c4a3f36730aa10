//go:build integration

package e2e

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// doctorIn runs ovn-docker doctor -f json in the VM: the checks by name, and the run.
func doctorIn(t *testing.T, vm *testutil.VM, env []string, args ...string) (map[string]api.Check, []string, result) {
	t.Helper()
	r := ovnDocker(t, vm, env, append([]string{"doctor", "-f", "json", "--plugin-dir", vm.Env["STACK_VM_PLUGIN_DIR"]}, args...)...)
	var checks []api.Check
	if err := json.Unmarshal([]byte(r.stdout), &checks); err != nil {
		t.Fatalf("doctor -f json: %v\n%s", err, r)
	}
	byName := map[string]api.Check{}
	var failed []string
	for _, c := range checks {
		byName[c.Name] = c
		if !c.OK {
			failed = append(failed, c.Name)
		}
	}
	if (len(failed) > 0) != (r.code == 1) {
		t.Fatalf("doctor exited %d with failed checks %v", r.code, failed)
	}
	return byName, failed, r
}

// applyFix runs, inside the VM, the command a failed check's fix begins with (up to a
// parenthesis or a comma): what a user would paste.
func applyFix(t *testing.T, vm *testutil.VM, fix string) {
	t.Helper()
	cmd := fix
	if i := strings.IndexAny(cmd, "(,"); i >= 0 {
		cmd = cmd[:i]
	}
	args := strings.Fields(cmd)
	if len(args) == 0 || (args[0] != "ip" && args[0] != "ovs-vsctl") {
		t.Fatalf("the fix %q does not begin with a command", fix)
	}
	vm.Run(t, args[0], args[1:]...)
}

// TestDoctor: on a VM as the stack made it, doctor fails only for the agent, and its fix
// (starting the agent) makes every line green. Then each fault, one at a time: the
// failing line names it, and the fix it prints, applied, makes doctor green again.
func TestDoctor(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]

	checks, failed, r := doctorIn(t, vm, nil)
	if !slices.Equal(failed, []string{"agent"}) || !strings.Contains(checks["agent"].Fix, "ovn-docker daemon") {
		t.Fatalf("without the agent: failed %v, want only agent with a fix that starts it\n%s", failed, r)
	}
	if !strings.Contains(r.stderr, "1 of") {
		t.Errorf("doctor's exit says nothing of how many failed: %q", r.stderr)
	}
	startPlugin(t, vm)
	checks, failed, r = doctorIn(t, vm, nil)
	if len(failed) > 0 {
		t.Fatalf("with the agent: failed %v\n%s", failed, r)
	}
	for _, name := range []string{"ovsdb", "bridge", "uplink", "keystone", "clock", "neutron", "trunk extension", "vm port", "trunk", "mtu", "docker", "agent", "plugin"} {
		if _, ok := checks[name]; !ok {
			t.Errorf("no %q line: %s", name, r.stdout)
		}
	}
	// The table: one line per check, "ok" first.
	if tr := ovnDocker(t, vm, nil, "doctor", "--plugin-dir", vm.Env["STACK_VM_PLUGIN_DIR"]); tr.code != 0 || !strings.HasPrefix(tr.stdout, "ok ") {
		t.Errorf("doctor (table): %s", tr)
	}
	mtu := strings.Fields(vm.Run(t, "cat", "/sys/class/net/eth0/mtu"))[0]
	t.Cleanup(func() {
		// Whatever a failed step left: the VM as the stack made it.
		_, _ = vm.Try("ovs-vsctl", "--db="+vm.OVSDB(), "--may-exist", "add-port", "br0", "eth0")
		_, _ = vm.Try("ip", "link", "set", "eth0", "mtu", mtu, "up")
	})

	// Faults of the VM itself: the fix is a command, applied as printed.
	for _, f := range []struct {
		name   string
		inject []string
		line   string
		detail string
	}{
		{"uplink off the bridge", []string{"ovs-vsctl", "--db=" + vm.OVSDB(), "del-port", "br0", "eth0"}, "uplink", "eth0 is not a port of br0"},
		{"uplink down", []string{"ip", "link", "set", "eth0", "down"}, "uplink", "eth0 is down"},
		{"uplink MTU below the network's", []string{"ip", "link", "set", "eth0", "mtu", "1280"}, "mtu", "eth0 has MTU 1280, below its Neutron network's"},
	} {
		t.Run(f.name, func(t *testing.T) {
			vm.Run(t, f.inject[0], f.inject[1:]...)
			checks, failed, r := doctorIn(t, vm, nil)
			c := checks[f.line]
			if c.OK || failed[0] != f.line || !strings.Contains(c.Detail, f.detail) || c.Fix == "" {
				t.Fatalf("want %s failing first with %q and a fix; failed %v, %+v\n%s", f.line, f.detail, failed, c, r)
			}
			applyFix(t, vm, c.Fix)
			if _, failed, r := doctorIn(t, vm, nil); len(failed) > 0 {
				t.Fatalf("after the fix %q: failed %v\n%s", c.Fix, failed, r)
			}
		})
	}

	// Faults of the settings: the fix names the setting; given right, doctor is green.
	for _, f := range []struct {
		name         string
		env, args    []string
		line, detail string
		fix          string
	}{
		{"Open vSwitch unreachable", []string{"OVN_DOCKER_OVSDB=unix:/nonexistent/db.sock"}, nil, "ovsdb", "/nonexistent/db.sock", "--ovsdb"},
		{"no such bridge", []string{"OVN_DOCKER_BRIDGE=br9"}, nil, "bridge", "bridge br9 not found", "--bridge"},
		{"Keystone unreachable", []string{"OS_AUTH_URL=http://127.0.0.1:1/v3"}, nil, "keystone", "127.0.0.1:1", "Keystone URL"},
		{"credentials refused", []string{"OS_PASSWORD=not-the-password"}, nil, "keystone", "refused the credentials", "check the credentials"},
		{"no credentials at all", []string{"OS_AUTH_URL=", "OS_USERNAME=", "OS_PASSWORD=", "OS_PROJECT_NAME=", "OS_REGION_NAME=",
			"OS_USER_DOMAIN_NAME=", "OS_PROJECT_DOMAIN_NAME="}, nil, "keystone", "no OpenStack credentials", "give credentials: os-cloud = NAME"},
		{"no such VM port", []string{"OVN_DOCKER_VIF_ID=0b7a39a6-1b7e-4a8e-9a52-3d1f0c0ffee0"}, nil, "vm port", "not visible to this project", "--vif-id"},
		{"dockerd unreachable", []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}, nil, "docker", "nonexistent", "DOCKER_HOST"},
		{"no such plugin", nil, []string{"--plugin-name", "nope"}, "plugin", "nope.sock", "--plugin-name"},
	} {
		t.Run(f.name, func(t *testing.T) {
			checks, failed, r := doctorIn(t, vm, f.env, f.args...)
			c := checks[f.line]
			if c.OK || failed[0] != f.line || !strings.Contains(c.Detail, f.detail) || !strings.Contains(c.Fix, f.fix) {
				t.Fatalf("want %s failing first with %q and a fix naming %s; failed %v, %+v\n%s", f.line, f.detail, f.fix, failed, c, r)
			}
			if strings.Contains(r.stdout+r.stderr, "not-the-password") {
				t.Fatalf("the password is in doctor's output:\n%s", r)
			}
		})
	}
	if _, failed, r := doctorIn(t, vm, nil); len(failed) > 0 {
		t.Fatalf("at the end: failed %v\n%s", failed, r)
	}
}

// TestPreflightRefusesBeforeNeutron: run with a bridge the VM lacks is refused with
// doctor's words before any Neutron port is made; the agent refuses to start the same way.
func TestPreflightRefusesBeforeNeutron(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	net := tenantNetwork(t, vm, "preflight-"+vm.Name)
	t.Cleanup(func() { cleanVM(t, vm) })

	env := []string{"OVN_DOCKER_BRIDGE=br9"}
	r := ovnDocker(t, vm, env, "--standalone", "--network", net, "run", "-d", "--net=none", "busybox:local", "sleep", "1d")
	const want = "ovn-docker: bridge: bridge br9 not found in "
	if r.code != 1 || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "; fix: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("run with no bridge: want one line %q...; fix: ...\n%s", want, r)
	}
	assertClean(t, s, vm)

	d := exec.Command("ip", "netns", "exec", vm.Name, bin, "daemon", "--plugin-dir", t.TempDir())
	d.Env = vm.Environ(env...)
	out, err := d.CombinedOutput()
	if err == nil || !strings.Contains(string(out), strings.TrimPrefix(want, "ovn-docker: ")) {
		t.Fatalf("the agent with no bridge: %v\n%s", err, out)
	}
	assertClean(t, s, vm)
}
