//go:build integration

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestWorkflowErrors: each way the spec's commands can fail says so in one line, exits
// non-zero, and leaves nothing in Neutron, OVS, the kernel, the state or Docker.
func TestWorkflowErrors(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	t.Cleanup(func() { cleanVM(t, vm) })
	ls := uniq("err")
	mustOVNDocker(t, vm, "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "delete", "network", ls) })
	// A container whose name a later case reuses.
	mustOVNDocker(t, vm, "--network", ls, "run", "-d", "--name", "taken", "busybox:local", "sleep", "600")
	taken := entryOf(t, vm, "taken", "eth0")
	before := measure(t, s, vm)
	const badToken = "gAAAAABnotarealtoken0123456789abcdefghijklmnopqrstuvwxyz"
	dir := t.TempDir()
	corrupt, badVLAN, badClouds := dir+"/corrupt", dir+"/vlan", dir+"/clouds.yaml"
	for path, content := range map[string]string{
		corrupt + "/state.json": "{not json",
		badVLAN + "/state.json": `{"version":1,"attachments":{"a":{"id":"a","vlan":5000}}}`,
		badClouds:               "clouds: [this is: not: a map",
		dir + "/token-readable": "gAAAAABsometokenvalue",
		dir + "/token-private":  "gAAAAABsometokenvalue",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir+"/token-readable", 0o644); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("n", 300)
	vmB := s.TenantBVM(t)

	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string // in the one line of stderr
	}{
		{"unknown network", nil, []string{"--network", "no-such-net", "run", "-d", "busybox:local", "true"}, `network "no-such-net": not found`},
		{"invalid token", nil, []string{"--cred=" + badToken, "list", "networks"}, "refused the token"},
		{"invalid token on run", nil, []string{"--cred=" + badToken, "--network", ls, "run", "-d", "busybox:local", "true"}, "token"},
		{"vif-id not found", nil, []string{"--vif-id=00000000-0000-4000-8000-000000000000", "--network", ls, "run", "-d", "busybox:local", "true"}, "no such Neutron port"},
		{"bad CIDR", nil, []string{"create", "network", uniq("bad"), "--subnet", "10.0.0.0/33"}, "is not a CIDR"},
		{"CIDR with host bits", nil, []string{"create", "network", uniq("bad"), "--subnet", "10.0.0.5/24"}, "host bits"},
		{"image missing", nil, []string{"--network", ls, "run", "-d", "no-such-image:1", "true"}, `image "no-such-image:1" not found`},
		{"docker down", []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}, []string{"--network", ls, "run", "-d", "busybox:local", "true"}, "docker is not reachable"},
		{"name in use (fails after the ports were made)", nil, []string{"--network", ls, "run", "-d", "--name", "taken", "busybox:local", "true"}, "already in use"},
		{"bad docker option", nil, []string{"--network", ls, "run", "-d", "--memory", "lots", "busybox:local", "true"}, "--memory"},
		{"docker network not none", nil, []string{"--network", ls, "run", "-d", "--net=host", "busybox:local", "true"}, "--net=none"},
		{"no network", nil, []string{"run", "-d", "busybox:local", "true"}, "--network"},
		{"wrong mode", nil, []string{"--mode", "magic", "--network", ls, "run", "-d", "busybox:local", "true"}, "unknown mode"},
		{"no credentials", []string{"OS_PASSWORD=", "OS_USERNAME=", "OS_CLOUD="}, []string{"list", "networks"}, "no OpenStack credentials"},
		{"wrong password", []string{"OS_PASSWORD=wrong-password-123"}, []string{"list", "networks"}, "refused the credentials (password)"},
		{"unknown command", nil, []string{"frobnicate"}, "unknown command"},
		// Command lines.
		{"create network without a name", nil, []string{"create", "network"}, "needs NAME"},
		{"create network with two names", nil, []string{"create", "network", "a", "b"}, "needs NAME"},
		{"delete network without a name", nil, []string{"delete", "network"}, "needs NAME"},
		{"rm without a container", nil, []string{"rm"}, "needs at least one container"},
		{"zero timeout", nil, []string{"--timeout=0s", "list", "networks"}, "--timeout must be positive"},
		{"bad log level", nil, []string{"--log-level", "loud", "ps"}, "--log-level"},
		{"bad ps format", nil, []string{"ps", "-f", "xml"}, `-f "xml": use table, json, yaml, value`},
		{"bad list format", nil, []string{"list", "networks", "-f", "csv"}, `-f "csv": use table, json, yaml, value`},
		{"bad ps column", nil, []string{"ps", "-c", "colour"}, `-c "colour": no such column; use one of container, name`},
		{"bad bench samples", nil, []string{"bench", "--samples", "x"}, "--samples"},
		{"unknown flag", nil, []string{"--frob", "ps"}, "unknown flag"},
		// Network names.
		{"empty network name", nil, []string{"create", "network", ""}, "network name is empty"},
		{"network name with a newline", nil, []string{"create", "network", "a\nb"}, "control character"},
		{"network name too long", nil, []string{"create", "network", long}, "at most 255"},
		{"network name like an ID", nil, []string{"create", "network", "0b1f2c3d-0000-4000-8000-000000000000"}, "looks like an ID"},
		{"network name taken", nil, []string{"create", "network", ls}, "already exists"},
		{"delete an unknown network", nil, []string{"delete", "network", "no-such-net"}, "not found"},
		{"empty --network", nil, []string{"--network", "", "run", "-d", "busybox:local", "true"}, "network name is empty"},
		// CIDRs and gateways.
		{"IPv6 as --subnet", nil, []string{"create", "network", uniq("bad"), "--subnet", "fd00::/64"}, "is not IPv4"},
		{"subnet too small", nil, []string{"create", "network", uniq("bad"), "--subnet", "10.0.0.0/30"}, "too small"},
		{"multicast subnet", nil, []string{"create", "network", uniq("bad"), "--subnet", "224.0.0.0/24"}, "not a unicast range"},
		{"gateway without subnet", nil, []string{"create", "network", uniq("bad"), "--gateway", "10.0.0.1"}, "--gateway needs --subnet"},
		{"gateway outside the subnet", nil, []string{"create", "network", uniq("bad"), "--subnet", "10.0.0.0/24", "--gateway", "10.9.9.9"}, "not a host address"},
		{"gateway not an address", nil, []string{"create", "network", uniq("bad"), "--subnet", "10.0.0.0/24", "--gateway", "abc"}, "is not an IP address"},
		{"IPv4 as --ipv6-subnet", nil, []string{"create", "network", uniq("bad"), "--ipv6-subnet", "10.0.0.0/24"}, "is not IPv6"},
		// vif-ids.
		{"vif-id not an ID", nil, []string{"--vif-id=not-a-port", "--network", ls, "run", "-d", "busybox:local", "true"}, "no such Neutron port"},
		{"vif-id of another tenant's VM", nil, []string{"--vif-id=" + vmB.VIFID(), "--network", ls, "run", "-d", "busybox:local", "true"}, "not visible to this project"},
		// Container references.
		{"rm an unknown container", nil, []string{"rm", "-f", "no-such-container"}, "no such container"},
		{"rm a running container without -f", nil, []string{"rm", "taken"}, "is running"},
		{"rm a sandbox in use", nil, []string{"rm", "-f", taken.Sandbox}, "network sandbox of"},
		// Configuration and state files.
		{"corrupt state file", []string{"OVN_DOCKER_STATE_DIR=" + corrupt}, []string{"ps"}, "is corrupt"},
		{"state file with a VLAN out of range", []string{"OVN_DOCKER_STATE_DIR=" + badVLAN}, []string{"ps"}, "vlan 5000"},
		{"unknown cloud", []string{"OS_CLIENT_CONFIG_FILE=" + s.CloudsFile()}, []string{"--os-cloud", "no-such-cloud", "list", "networks"}, "no-such-cloud"},
		{"malformed clouds.yaml", []string{"OS_CLIENT_CONFIG_FILE=" + badClouds}, []string{"--os-cloud", "tenant-a", "list", "networks"}, "tenant-a"},
		{"missing OS_CACERT", []string{"OS_CACERT=/nonexistent/ca.pem"}, []string{"list", "networks"}, "OS_CACERT"},
		{"token file readable by others", nil, []string{"--cred-file", dir + "/token-readable", "list", "networks"}, "token-readable"},
		{"token file missing", nil, []string{"--cred-file", dir + "/no-such-file", "list", "networks"}, "no-such-file"},
		{"--cred and --cred-file", nil, []string{"--cred", badToken, "--cred-file", dir + "/token-private", "list", "networks"}, "not both"},
		// docker run arguments.
		{"published port", nil, []string{"--network", ls, "run", "-d", "-p", "80:80", "busybox:local", "true"}, "-p"},
		{"fixed IP outside the network", nil, []string{"--network", ls, "run", "-d", "--ip", "10.0.0.5", "busybox:local", "true"}, "address 10.0.0.5 is in none of network " + ls + "'s subnets"},
		{"-it with no terminal", nil, []string{"--network", ls, "run", "-it", "busybox:local", "sh"}, "the input device is not a TTY"},
		{"restart with --rm", nil, []string{"--network", ls, "run", "-d", "--rm", "--restart=always", "busybox:local", "true"}, "--restart"},
		{"unknown docker option", nil, []string{"--network", ls, "run", "-d", "--frob", "busybox:local", "true"}, `unknown docker run option "--frob"`},
		{"no image", nil, []string{"--network", ls, "run", "-d"}, "requires an image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ovnDocker(t, vm, tc.env, tc.args...)
			if r.code == 0 {
				t.Fatalf("succeeded: %s", r)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "ovn-docker: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("want one line \"ovn-docker: ...%s...\", got: %s", tc.want, r)
			}
			if len(lines) > 1 {
				t.Errorf("more than one line on stderr:\n%s", r.stderr)
			}
			if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
				t.Fatalf("a panic: %s", r)
			}
			for _, secret := range []string{badToken, "wrong-password-123", vm.Env["OS_PASSWORD"]} {
				if strings.Contains(r.stderr+r.stdout, secret) {
					t.Fatalf("a secret appears in the output: %s", r)
				}
			}
			after := measure(t, s, vm)
			if len(after.neutronPorts) != len(before.neutronPorts) || len(after.ovsPorts) != len(before.ovsPorts) ||
				len(after.veths) != len(before.veths) || after.attachments != before.attachments ||
				len(after.sandboxes) != len(before.sandboxes) || len(after.subports) != len(before.subports) {
				t.Fatalf("left something behind:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
	mustOVNDocker(t, vm, "rm", "-f", "taken")
	assertClean(t, s, vm)
}

// TestBindingProfileMode: with admin credentials, --mode=binding-profile makes the same
// OVN Northbound row as the trunk mode: parent_name = the VM's port, tag = the VLAN.
func TestBindingProfileMode(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })
	ls := uniq("bp")
	mustOVNDocker(t, vm1, "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm1, nil, "delete", "network", ls) })
	admin := []string{"OS_USERNAME=admin", "OS_PASSWORD=" + s.Env["OS_PASSWORD"], "OS_PROJECT_NAME=admin"}

	// A tenant is refused binding:profile by Neutron's policy, and nothing stays.
	r := ovnDocker(t, vm1, nil, "--mode=binding-profile", "--network", ls, "run", "-d", "busybox:local", "sleep", "600")
	if r.code == 0 || !strings.Contains(r.stderr, "binding:profile") && !strings.Contains(strings.ToLower(r.stderr), "policy") {
		t.Fatalf("tenant with binding-profile mode: %s", r)
	}
	assertClean(t, s, vm1)

	r = ovnDocker(t, vm1, admin, "--mode=binding-profile", "--network", ls, "run", "-d", "--name", "bp1", "busybox:local", "sleep", "600")
	if r.code != 0 {
		t.Fatalf("admin, binding-profile: %s", r)
	}
	bp := entryOf(t, vm1, "bp1", "eth0")
	parent := strings.TrimSpace(s.NBCtl(t, "--bare", "--columns=parent_name", "find", "logical_switch_port", "name="+bp.Port))
	tag := strings.TrimSpace(s.NBCtl(t, "--bare", "--columns=tag", "find", "logical_switch_port", "name="+bp.Port))
	if parent != vm1.VIFID() || tag != itoa(bp.VLAN) {
		t.Fatalf("NB row in binding-profile mode: parent_name=%q tag=%q, want %s and %d", parent, tag, vm1.VIFID(), bp.VLAN)
	}
	psec := s.NBCtl(t, "--bare", "--columns=port_security", "find", "logical_switch_port", "name="+bp.Port)
	if !strings.Contains(psec, bp.MAC) {
		t.Fatalf("no port security with %s: %q", bp.MAC, psec)
	}
	// And it carries packets: a trunk-mode container in vm2 on the same network answers.
	mustOVNDocker(t, vm2, "--network", ls, "run", "-d", "--name", "tr2", "busybox:local", "sleep", "600")
	tr := entryOf(t, vm2, "tr2", "eth0")
	if out, err := dockerIn(vm1, "exec", "bp1", "ping", "-c", "2", "-W", "2", ipOf(tr)); err != nil {
		t.Fatalf("binding-profile container cannot reach a trunk-mode one: %v\n%s", err, out)
	}
	if r := ovnDocker(t, vm1, admin, "--mode=binding-profile", "rm", "-f", "bp1"); r.code != 0 {
		t.Fatalf("rm: %s", r)
	}
	// The port is the admin project's: only admin can tell it is gone.
	if _, err := ports.Get(context.Background(), s.Network(t, "admin"), bp.Port).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("binding-profile port %s still there after rm: %v", bp.Port, err)
	}
	mustOVNDocker(t, vm2, "rm", "-f", "tr2")
	assertClean(t, s, vm1)
	assertClean(t, s, vm2)
}
