//go:build integration

package e2e

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestCNIAddLatency (a benchmark: OVN_DOCKER_E2E_BENCH=1, as hack/bench.sh sets it): ADD
// one pod at a time, 20 on a network with no pool (cold: Neutron makes each port) and 20
// from a pool the configuration keeps; logs p50 and p95 of each. Nothing is asserted of
// the times: they are figures for BENCHMARKS.md, not a test.
func TestCNIAddLatency(t *testing.T) {
	if os.Getenv("OVN_DOCKER_E2E_BENCH") != "1" {
		t.Skip("a benchmark: OVN_DOCKER_E2E_BENCH=1 runs it")
	}
	s := testutil.LoadStack(t)
	vm, ls := poolAgentVM(t, s, "LSL")
	const n = 20
	measure := func(net *cniNet) (p50, p95 time.Duration) {
		var took []time.Duration
		for range n {
			took = append(took, net.add(t, newPodNS(t)))
		}
		slices.Sort(took)
		return took[n/2], took[n*95/100]
	}
	cold50, cold95 := measure(newCNINet(t, vm, ls))
	warmNet := newCNINet(t, vm, ls, map[string]any{"pool": map[string]int{"min": n + 1, "max": n + 1}})
	warmNet.addPod(t) // declares the pool
	readyIn(t, vm, n)
	warm50, warm95 := measure(warmNet)
	t.Logf("ADD at concurrency 1: cold (no pool) p50 %s, p95 %s; warm (pool) p50 %s, p95 %s",
		fmtMS(cold50), fmtMS(cold95), fmtMS(warm50), fmtMS(warm95))
}
