//go:build integration

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
	assertClean(t, s, vm)
}
