//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestConcurrentRuns: many `ovn-docker run` started at once in one VM all succeed, with
// VLANs unique in the VM; Neutron's conflicts are retried and never reach the user.
// OVN_DOCKER_E2E_CONCURRENT_RUNS sets how many (default 100).
func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	t.Cleanup(func() { cleanVM(t, vm) })
	n := 100
	if v, err := strconv.Atoi(os.Getenv("OVN_DOCKER_E2E_CONCURRENT_RUNS")); err == nil && v > 0 {
		n = v
	}
	ls := uniq("conc")
	mustOVNDocker(t, vm, "create", "network", ls, "--subnet", "10.123.0.0/22")
	t.Cleanup(func() { ovnDocker(t, vm, nil, "delete", "network", ls) })

	// The VM's processes send their trunk changes together: Neutron's own log counts the
	// calls on the VM's trunk.
	trunk := vmTrunk(t, s, vm)
	addsBefore, removesBefore := trunkCalls(t, s, trunk, "add_subports"), trunkCalls(t, s, trunk, "remove_subports")

	start := time.Now()
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runBinaryWithin(t, 20*time.Minute, bin, vm, nil, "--timeout", "15m", "--network", ls, "run", "-d",
				"--name", fmt.Sprintf("cc%03d", i), "busybox:local", "sleep", "3600")
		}()
	}
	wg.Wait()
	t.Logf("%d runs at once in %s", n, time.Since(start).Round(time.Second))
	failed := 0
	for i, r := range results {
		if r.code != 0 {
			failed++
			t.Errorf("run %d: %s", i, r)
		}
		if strings.Contains(r.stderr, "409") || strings.Contains(r.stderr, "Conflict") {
			t.Errorf("run %d showed a conflict to the user: %s", i, r.stderr)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d runs failed", failed, n)
	}
	vlans := map[int]string{}
	for _, e := range ps(t, vm) {
		if e.State != "attached" {
			t.Errorf("%s is %s", e.Name, e.State)
		}
		if other, dup := vlans[e.VLAN]; dup {
			t.Errorf("VLAN %d given to %s and %s", e.VLAN, other, e.Name)
		}
		vlans[e.VLAN] = e.Name
	}
	if len(vlans) != n {
		t.Fatalf("%d distinct VLANs for %d containers", len(vlans), n)
	}
	// OVS agrees: one access port per container, each with its own tag.
	tags := strings.Fields(vm.VSCtl(t, "--bare", "--columns=tag", "find", "port", "external_ids:ovn-docker-attachment!=\"\""))
	seen := map[string]bool{}
	for _, tag := range tags {
		if seen[tag] {
			t.Fatalf("two access ports with tag %s", tag)
		}
		seen[tag] = true
	}
	if len(tags) != n {
		t.Fatalf("%d access ports for %d containers", len(tags), n)
	}

	adds := trunkCalls(t, s, trunk, "add_subports") - addsBefore
	t.Logf("%d subports added in %d add_subports calls", n, adds)
	if adds < 1 || adds > n/2 {
		t.Errorf("%d add_subports calls for %d runs at once: the trunk changes were not sent together", adds, n)
	}

	// And all of them go at once too.
	start = time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runBinaryWithin(t, 20*time.Minute, bin, vm, nil, "--timeout", "15m", "rm", "-f", fmt.Sprintf("cc%03d", i))
		}()
	}
	wg.Wait()
	t.Logf("%d rm at once in %s", n, time.Since(start).Round(time.Second))
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("rm %d: %s", i, r)
		}
	}
	removes := trunkCalls(t, s, trunk, "remove_subports") - removesBefore
	t.Logf("%d subports removed in %d remove_subports calls", n, removes)
	if removes < 1 || removes > n/2 {
		t.Errorf("%d remove_subports calls for %d rm at once: the trunk changes were not sent together", removes, n)
	}
	assertClean(t, s, vm)
}

// vmTrunk returns the ID of the VM port's trunk, made if needed by a first container.
func vmTrunk(t *testing.T, s *testutil.Stack, vm *testutil.VM) string {
	t.Helper()
	nc := s.Network(t, "tenant-"+vm.Env["STACK_VM_TENANT"])
	find := func() string {
		pages, err := trunks.List(nc, trunks.ListOpts{PortID: vm.VIFID()}).AllPages(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		trs, _ := trunks.ExtractTrunks(pages)
		if len(trs) == 0 {
			return ""
		}
		return trs[0].ID
	}
	if id := find(); id != "" {
		return id
	}
	ls := uniq("trunk")
	mustOVNDocker(t, vm, "create", "network", ls, "--subnet", "10.125.0.0/24")
	mustOVNDocker(t, vm, "--network", ls, "run", "--rm", "busybox:local", "true")
	mustOVNDocker(t, vm, "delete", "network", ls)
	id := find()
	if id == "" {
		t.Fatal("the VM's port has no trunk after a run")
	}
	return id
}

// trunkCalls counts the calls (add_subports or remove_subports) on the trunk that
// Neutron's log has recorded so far.
func trunkCalls(t *testing.T, s *testutil.Stack, trunkID, call string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, "logs", "neutron-server.log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "PUT /v2.0/trunks/"+trunkID+"/"+call+" ")
}
