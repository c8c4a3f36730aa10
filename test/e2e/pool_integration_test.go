//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// readyPorts lists the ports of the VM's ready pool interfaces.
func readyPorts(t *testing.T, vm *testutil.VM) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, e := range ps(t, vm) {
		if e.State == "ready (pool)" {
			out[e.Port] = true
		}
	}
	return out
}

// poolsAtRest waits until the daemon's pools have each looked at what they hold (their
// depth is in its metrics: a pool sets it when it decides whether to grow) and none is
// still making interfaces: what they hold then is what they meant to.
func poolsAtRest(t *testing.T, vm *testutil.VM) {
	t.Helper()
	took := waitUntil(t, "the pools at rest", func() (bool, string) {
		b, err := agentMetrics(vm)
		if err != nil {
			return false, err.Error()
		}
		if !strings.Contains(b, "ovn_docker_pool_ready{") {
			return false, "no pool has looked at itself yet"
		}
		var st struct {
			Pools []struct {
				Key                    string
				Target, Ready, Filling int
			} `json:"pools"`
		}
		out := mustOVNDocker(t, vm, "status", "-f", "json")
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return false, err.Error()
		}
		for _, p := range st.Pools {
			if p.Filling > 0 || p.Ready < p.Target {
				return false, fmt.Sprintf("pool %s: %d ready of %d, %d being made", p.Key, p.Ready, p.Target, p.Filling)
			}
		}
		return true, ""
	})
	t.Logf("the pools were at rest %s after the daemon answered", fmtMS(took))
}

// agentMetrics reads the daemon's metrics, in Prometheus' text format.
func agentMetrics(vm *testutil.VM) (string, error) {
	sock := filepath.Join(vm.Env["OVN_DOCKER_STATE_DIR"], "metrics.sock")
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://agent/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// metricSum is the sum of a counter's series in the daemon's metrics.
func metricSum(t *testing.T, vm *testutil.VM, name string) float64 {
	t.Helper()
	b, err := agentMetrics(vm)
	if err != nil {
		t.Fatalf("the daemon's metrics: %v", err)
	}
	var sum float64
	for _, line := range strings.Split(b, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
			var v float64
			fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
			if len(fields) > 0 {
				if _, err := fmt.Sscan(fields[0], &v); err == nil {
					sum += v
				}
			}
		}
	}
	return sum
}

// waitReady waits until the pool holds n ready interfaces: the test's own time bounds it.
func waitReady(t *testing.T, vm *testutil.VM, n int) map[string]bool {
	t.Helper()
	var got map[string]bool
	took := waitUntil(t, fmt.Sprintf("%d ready interfaces in the pool", n), func() (bool, string) {
		got = readyPorts(t, vm)
		return len(got) >= n, fmt.Sprintf("%d ready", len(got))
	})
	t.Logf("the pool held %d ready interfaces after %s", len(got), fmtMS(took))
	return got
}

// TestPoolWarmRuns: with the daemon keeping a pool on the network, runs take ready
// interfaces (made in advance: their ports existed before the run) that carry
// packets, the pool refills, a daemon killed with -9 finds its pool again without
// doubling it, and draining leaves nothing.
func TestPoolWarmRuns(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm, peerVM := vms[0], vms[1]
	t.Cleanup(func() { cleanVM(t, vm); cleanVM(t, peerVM) })
	ls := uniq("pool")
	mustOVNDocker(t, vm, "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "delete", "network", ls) })
	t.Cleanup(func() { ovnDocker(t, vm, nil, "gc", "--drain-pools", "--grace", "1s") })
	mustOVNDocker(t, peerVM, "--network", ls, "run", "-d", "--name", "ppeer", "busybox:local", "sleep", "600")
	peer := entryOf(t, peerVM, "ppeer", "eth0")

	d := startPlugin(t, vm, "--pool", ls+":3:4", "--pool-batch", "3")
	before := waitReady(t, vm, 3)
	for i, name := range []string{"pw1", "pw2"} {
		mustOVNDocker(t, vm, "--network", ls, "run", "-d", "--name", name, "busybox:local", "sleep", "600")
		e := entryOf(t, vm, name, "eth0")
		if !before[e.Port] {
			t.Fatalf("run %d did not take a ready interface: port %s was not in the pool %v", i, e.Port, before)
		}
		if out, err := dockerIn(vm, "exec", name, "ping", "-c", "2", "-W", "2", ipOf(peer)); err != nil {
			t.Fatalf("%s (warm) cannot reach its peer: %v\n%s", name, err, out)
		}
	}
	// The daemon counts what its pool served (ovn-docker run came through it).
	if hits := metricSum(t, vm, "ovn_docker_pool_hits_total"); hits != 2 {
		t.Fatalf("the daemon's metrics count %v pool hits, want 2", hits)
	}
	// It refills.
	waitReady(t, vm, 3)

	// kill -9 and a restart: the pool's interfaces are its own again, none doubled.
	d.kill9(t)
	d.start(t)
	poolsAtRest(t, vm)
	ready := readyPorts(t, vm)
	if len(ready) < 3 || len(ready) > 4 {
		t.Fatalf("after the restart the pool holds %d ready interfaces, want 3..4", len(ready))
	}
	// Neutron knows exactly the state's ports: none leaked, none doubled.
	f := measure(t, s, vm)
	if len(f.neutronPorts) != f.attachments {
		t.Fatalf("%d Neutron ports for %d attachments", len(f.neutronPorts), f.attachments)
	}
	nc := s.Network(t, "tenant-a")
	for _, id := range f.neutronPorts {
		p, err := ports.Get(context.Background(), nc, id).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if p.Description != neutron.Description(vm.VIFID()) || !strings.HasPrefix(p.Name, neutron.NamePrefix) {
			t.Fatalf("port %s lacks ovn-docker's marks: %q %q", id, p.Name, p.Description)
		}
	}

	d.stop(t)
	mustOVNDocker(t, vm, "rm", "-f", "pw1")
	mustOVNDocker(t, vm, "rm", "-f", "pw2")
	if r := ovnDocker(t, vm, nil, "gc", "--drain-pools", "--grace", "1s"); r.code != 0 || !strings.Contains(r.stdout, "ready pool interface") {
		t.Fatalf("drain: %s", r)
	}
	assertClean(t, s, vm)
	mustOVNDocker(t, peerVM, "rm", "-f", "ppeer")
}
