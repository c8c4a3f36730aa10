//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// footprint is everything ovn-docker may leave in and around one VM.
type footprint struct {
	neutronPorts []string // container ports of the VM (description marker)
	subports     []string // the VM trunk's subports
	ovsPorts     []string // access ports on the VM's bridge
	veths        []string // odv*/odc* links in the VM
	attachments  int      // entries in the VM's state
	sandboxes    []string // sandbox containers in the VM's dockerd
}

func (f footprint) empty() bool {
	return len(f.neutronPorts)+len(f.subports)+len(f.ovsPorts)+len(f.veths)+f.attachments+len(f.sandboxes) == 0
}

// measure reads the VM's footprint from Neutron (as the VM's tenant), OVS, the kernel,
// the state and Docker, with the stack's own tools.
func measure(t *testing.T, s *testutil.Stack, vm *testutil.VM) footprint {
	t.Helper()
	ctx := context.Background()
	var f footprint
	nc := s.Network(t, "tenant-"+vm.Env["STACK_VM_TENANT"])
	pages, err := ports.List(nc, ports.ListOpts{Description: neutron.Description(vm.VIFID())}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := ports.ExtractPorts(pages)
	for _, p := range ps {
		f.neutronPorts = append(f.neutronPorts, p.ID)
	}
	tp, err := trunks.List(nc, trunks.ListOpts{PortID: vm.VIFID()}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trs, _ := trunks.ExtractTrunks(tp)
	for _, tr := range trs {
		for _, sp := range tr.Subports {
			f.subports = append(f.subports, sp.PortID)
		}
	}
	out := vm.VSCtl(t, "--bare", "--columns=name", "find", "port", "external_ids:ovn-docker-attachment!=\"\"")
	f.ovsPorts = strings.Fields(out)
	links := testutil.MustRun(t, "ip", "-n", vm.Name, "-o", "link", "show")
	for _, l := range strings.Split(links, "\n") {
		fields := strings.Fields(l)
		if len(fields) > 1 {
			name := strings.SplitN(strings.TrimSuffix(fields[1], ":"), "@", 2)[0]
			if strings.HasPrefix(name, "odv") || strings.HasPrefix(name, "odc") {
				f.veths = append(f.veths, name)
			}
		}
	}
	r := ovnDocker(t, vm, nil, "ps", "-f", "json")
	if r.code != 0 {
		t.Fatalf("ps: %s", r)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("ps -f json: %v\n%s", err, r.stdout)
	}
	f.attachments = len(rows)
	if vm.Env["DOCKER_HOST"] != "" {
		out, err := dockerIn(vm, "ps", "-aq", "--filter", "label=org.ovn-docker.role=sandbox")
		if err != nil {
			t.Fatalf("docker ps: %v\n%s", err, out)
		}
		f.sandboxes = strings.Fields(out)
	}
	return f
}

// assertClean fails the test when anything of ovn-docker is left in the VM.
func assertClean(t *testing.T, s *testutil.Stack, vm *testutil.VM) {
	t.Helper()
	if f := measure(t, s, vm); !f.empty() {
		t.Fatalf("left behind in %s: %+v", vm.Name, f)
	}
}

// cleanVM removes every container ovn-docker made in the VM (a test's own cleanup).
func cleanVM(t *testing.T, vm *testutil.VM) {
	t.Helper()
	out, _ := dockerIn(vm, "ps", "-aq", "--filter", "label=org.ovn-docker.sandbox")
	for _, id := range strings.Fields(out) {
		ovnDocker(t, vm, nil, "rm", "-f", id)
	}
	out, _ = dockerIn(vm, "ps", "-aq", "--filter", "label=org.ovn-docker.role=sandbox")
	for _, id := range strings.Fields(out) {
		ovnDocker(t, vm, nil, "rm", "-f", id)
	}
	ovnDocker(t, vm, nil, "gc")
}
