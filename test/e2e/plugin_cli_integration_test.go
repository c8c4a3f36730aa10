//go:build integration

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestPluginAndCLISideBySide runs containers through the daemon (docker run --network)
// and through the command line in its own process (ovn-docker --standalone run: a
// sandbox, as without the agent) in one VM at the same time, on one Neutron network: they
// share the state and so the VLAN allocator, and no VLAN is handed out twice, in the
// state, on the trunk or on the bridge. The two kinds of containers talk to each other.
func TestPluginAndCLISideBySide(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	startPlugin(t, vm)
	nc := s.Network(t, "tenant-a")
	ls := uniq("LSC")
	pluginNetwork(t, vm, ls)
	neu := neutronNetworkNamed(t, nc, ls) // the command line finds it by that name

	const n = 3
	var viaDocker, viaCLI []string
	for i := 0; i < n; i++ {
		viaDocker = append(viaDocker, uniq(fmt.Sprintf("sd%d", i)))
		viaCLI = append(viaCLI, uniq(fmt.Sprintf("sc%d", i)))
	}
	t.Cleanup(func() {
		for _, c := range viaCLI {
			ovnDocker(t, vm, nil, "--standalone", "rm", "-f", c)
		}
		for _, c := range viaDocker {
			_, _ = dockerIn(vm, "rm", "-f", c)
		}
	})
	var wg sync.WaitGroup
	errs := make(chan string, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func(name string) {
			defer wg.Done()
			if out, err := dockerIn(vm, "run", "-d", "--name", name, "--network", ls, "busybox:local", "sleep", "600"); err != nil {
				errs <- fmt.Sprintf("docker run %s: %v\n%s", name, err, out)
			}
		}(viaDocker[i])
		go func(name string) {
			defer wg.Done()
			if out, err := cliIn(vm, "--standalone", "--network", ls, "run", "-d", "--name", name, "busybox:local", "sleep", "600"); err != nil {
				errs <- fmt.Sprintf("ovn-docker run %s: %v\n%s", name, err, out)
			}
		}(viaCLI[i])
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}

	rows := ps(t, vm)
	if len(rows) != 2*n {
		t.Fatalf("ps shows %d interfaces, want %d: %+v", len(rows), 2*n, rows)
	}
	stateVLANs := map[int]string{}
	for _, r := range rows {
		if other, dup := stateVLANs[r.VLAN]; dup {
			t.Fatalf("VLAN %d held by %s and %s", r.VLAN, other, r.Port)
		}
		stateVLANs[r.VLAN] = r.Port
	}
	subs := subportVLANs(t, nc, vm)
	if len(subs) != 2*n {
		t.Fatalf("the trunk has %d subports, want %d", len(subs), 2*n)
	}
	for port, v := range subs {
		if stateVLANs[v] != port {
			t.Fatalf("subport %s has VLAN %d, the state gives that VLAN to %s", port, v, stateVLANs[v])
		}
	}
	tags := strings.Fields(vm.VSCtl(t, "--bare", "--columns=tag", "find", "port", "external_ids:ovn-docker-attachment!=\"\""))
	seen := map[string]bool{}
	for _, tag := range tags {
		if seen[tag] {
			t.Fatalf("two access ports with tag %s: %v", tag, tags)
		}
		seen[tag] = true
	}
	if len(tags) != 2*n {
		t.Fatalf("%d access ports, want %d", len(tags), 2*n)
	}

	// A container of the command line and one of the daemon, on one network.
	ipDocker := addressOf(t, vm, ls, viaDocker[0])
	if ok, out := pingFrom(t, vm, viaCLI[0], ipDocker); !ok {
		t.Fatalf("%s (ovn-docker run) cannot ping %s (docker run) at %s:\n%s", viaCLI[0], viaDocker[0], ipDocker, out)
	}

	for _, c := range viaCLI {
		mustOVNDocker(t, vm, "--standalone", "rm", "-f", c)
	}
	for _, c := range viaDocker {
		mustDocker(t, vm, "rm", "-f", c)
	}
	mustDocker(t, vm, "network", "rm", ls)
	assertNetworkGone(t, nc, neu.ID)
	assertPluginClean(t, s, vm)
}

// cliIn runs ovn-docker in the VM from any goroutine (no test helpers that stop the test).
func cliIn(vm *testutil.VM, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := vm.Command(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
