//go:build integration

package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestPluginRunOverhead measures, for the closing note of the issue, what the plugin
// adds to a container's start: the median of 20 "docker run --network LS busybox:local
// true" against 20 "docker run --net=none busybox:local true" in the same VM, run
// alternately. It logs the figures and asserts no time: a measurement, not a check, run
// only when OVN_DOCKER_E2E_BENCH=1 (hack/bench.sh does).
func TestPluginRunOverhead(t *testing.T) {
	if os.Getenv("OVN_DOCKER_E2E_BENCH") != "1" {
		t.Skip("a measurement: OVN_DOCKER_E2E_BENCH=1 runs it")
	}
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	startPlugin(t, vm)
	ls := uniq("LSB")
	pluginNetwork(t, vm, ls)

	const runs = 20
	var withNet, without []time.Duration
	timed := func(args ...string) time.Duration {
		t.Helper()
		name := uniq("bench")
		t0 := time.Now()
		out, err := dockerIn(vm, append([]string{"run", "--name", name}, args...)...)
		d := time.Since(t0)
		if err != nil {
			t.Fatalf("docker run %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		mustDocker(t, vm, "rm", name)
		return d
	}
	// One of each first, so that neither pays for the image or the network alone.
	timed("--network", ls, "busybox:local", "true")
	timed("--net=none", "busybox:local", "true")
	for i := 0; i < runs; i++ {
		withNet = append(withNet, timed("--network", ls, "busybox:local", "true"))
		without = append(without, timed("--net=none", "busybox:local", "true"))
	}
	mn, mo := median(withNet), median(without)
	t.Logf("median of %d runs in %s: docker run --network %s busybox:local true: %s; --net=none: %s; ratio %.2f",
		runs, vm.Name, ls, fmtMS(mn), fmtMS(mo), float64(mn)/float64(mo))
	t.Logf("with the network: %v", withNet)
	t.Logf("without: %v", without)

	mustDocker(t, vm, "network", "rm", ls)
	assertPluginClean(t, s, vm)
}
