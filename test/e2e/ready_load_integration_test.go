//go:build integration

package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestReadinessUnderLoad: containers started together in one VM, round after round, all
// start, and each one's data-path proof (OVN's DHCP answer) is timed from the run's own
// log: from "data path proof" to "attached". It reports the spread, so a readiness
// bound can be judged against what the stack really takes under load.
// OVN_DOCKER_E2E_LOAD sets "ROUNDSxN" (default 3x10).
func TestReadinessUnderLoad(t *testing.T) {
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	rounds, n := 3, 10
	if v := os.Getenv("OVN_DOCKER_E2E_LOAD"); v != "" {
		if _, err := fmt.Sscanf(v, "%dx%d", &rounds, &n); err != nil {
			t.Fatalf("OVN_DOCKER_E2E_LOAD=%q: want ROUNDSxN", v)
		}
	}
	ls := tenantNetwork(t, vm, uniq("load"))
	t.Cleanup(func() { cleanVM(t, vm) })

	var waits []time.Duration
	for r := 0; r < rounds; r++ {
		results := make([]result, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], _ = runOVNDocker(vm, "--log-level", "debug", "--network", ls, "run", "-d",
					"--name", fmt.Sprintf("load%d-%02d", r, i), "busybox:local", "sleep", "3600")
			}()
		}
		wg.Wait()
		var round []time.Duration
		for i, res := range results {
			if res.code != 0 {
				t.Errorf("round %d, run %d: %s", r, i, res)
				continue
			}
			d, ok := readyWait(res.stderr)
			if !ok {
				t.Errorf("round %d, run %d: no data path proof in its log:\n%s", r, i, res.stderr)
				continue
			}
			round = append(round, d)
		}
		slices.Sort(round)
		t.Logf("round %d: %d at once in %s; data path proven in %v", r, n, vm.Name, round)
		waits = append(waits, round...)
		for i := 0; i < n; i++ {
			ovnDocker(t, vm, nil, "rm", "-f", fmt.Sprintf("load%d-%02d", r, i))
		}
	}
	if len(waits) > 0 {
		slices.Sort(waits)
		t.Logf("%d proofs: median %s, 90th %s, max %s", len(waits), waits[len(waits)/2],
			waits[len(waits)*9/10], waits[len(waits)-1])
	}
	assertClean(t, s, vm)
}

// readyWait is the time from the log's "data path proof" line to its "attached" line.
func readyWait(log string) (time.Duration, bool) {
	var from, to time.Time
	for _, line := range strings.Split(log, "\n") {
		at := func() time.Time {
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "time="); ok {
					tm, _ := time.Parse(time.RFC3339Nano, v)
					return tm
				}
			}
			return time.Time{}
		}
		switch {
		case strings.Contains(line, `msg="data path proof"`):
			from = at()
		case strings.Contains(line, "msg=attached"):
			to = at()
		}
	}
	if from.IsZero() || to.IsZero() {
		return 0, false
	}
	return to.Sub(from), true
}
