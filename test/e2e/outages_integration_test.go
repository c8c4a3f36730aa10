//go:build integration

package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// Each outage: bounded retries and a deadline, one clear line, nothing partial left
// (after gc where a slow server may still act on a request its client gave up on), and
// the next run works once the service is back.

func outageSetup(t *testing.T) (*testutil.Stack, *testutil.VM, string) {
	t.Helper()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	t.Cleanup(func() { cleanVM(t, vm) })
	ls := uniq("out")
	mustOVNDocker(t, vm, "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vm, nil, "delete", "network", ls) })
	return s, vm, ls
}

// expectOneLine checks a failed run's output.
func expectOneLine(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("succeeded: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "ovn-docker: ") || len(lines) != 1 {
		t.Fatalf("want one line \"ovn-docker: ...\", got: %s", r)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Fatalf("the error does not say %q: %s", w, last)
		}
	}
}

func runOut(t *testing.T, vm *testutil.VM, env []string, ls, name string, timeout string) result {
	t.Helper()
	return ovnDocker(t, vm, env, "--timeout", timeout, "--network", ls, "run", "-d", "--name", name, "busybox:local", "sleep", "600")
}

func recovers(t *testing.T, s *testutil.Stack, vm *testutil.VM, ls, name string) {
	t.Helper()
	if r := ovnDocker(t, vm, nil, "gc", "--grace", "1s"); r.code != 0 {
		t.Fatalf("gc: %s", r)
	}
	assertClean(t, s, vm)
	mustOVNDocker(t, vm, "--network", ls, "run", "-d", "--name", name, "busybox:local", "sleep", "600")
	mustOVNDocker(t, vm, "rm", "-f", name)
	assertClean(t, s, vm)
}

func TestOutageNeutron5xx(t *testing.T) {
	t.Parallel()
	s, vm, ls := outageSetup(t)
	f := s.FaultyNeutron(t, vm)
	// A few 503s on the way: retried, and the user never sees them.
	f.Fail(http.StatusServiceUnavailable, 3, nil)
	if r := runOut(t, vm, nil, ls, "o5a", "2m"); r.code != 0 || r.stderr != "" {
		t.Fatalf("run through three 503s: %s", r)
	}
	mustOVNDocker(t, vm, "rm", "-f", "o5a")
	// A Neutron that answers 500 to every port creation: one clear line, nothing left.
	f.Fail(http.StatusInternalServerError, -1, func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/ports")
	})
	expectOneLine(t, runOut(t, vm, nil, ls, "o5b", "1m"), "HTTP 500")
	f.Heal()
	recovers(t, s, vm, ls, "o5c")
}

func TestOutageNeutronSlowerThanTheTimeout(t *testing.T) {
	t.Parallel()
	s, vm, ls := outageSetup(t)
	f := s.FaultyNeutron(t, vm)
	f.SetDelay(4 * time.Second)
	start := time.Now()
	r := runOut(t, vm, []string{"OVN_DOCKER_API_TIMEOUT=1s"}, ls, "slow", "20s")
	expectOneLine(t, r, "no answer within 1s")
	if d := time.Since(start); d > 40*time.Second {
		t.Fatalf("gave up after %s: the deadline did not hold", d)
	}
	f.Heal()
	// The slow Neutron may still have made a port after its client gave up: once it has
	// answered everything it was asked, gc finds it.
	if err := f.Quiet(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	recovers(t, s, vm, ls, "slow2")
}

func TestOutageNeutronDown(t *testing.T) {
	s, vm, ls := outageSetup(t)
	stack(t, "stop", "neutron")
	t.Cleanup(func() { stack(t, "start", "neutron") })
	start := time.Now()
	expectOneLine(t, runOut(t, vm, nil, ls, "down", "30s"), "Neutron")
	if d := time.Since(start); d > 60*time.Second {
		t.Fatalf("gave up after %s", d)
	}
	stack(t, "start", "neutron")
	recovers(t, s, vm, ls, "back")
}

func TestOutageKeystoneDown(t *testing.T) {
	s, vm, ls := outageSetup(t)
	fresh := []string{"OVN_DOCKER_STATE_DIR=" + t.TempDir()} // no cached token to fall back on
	stack(t, "stop", "keystone")
	t.Cleanup(func() { stack(t, "start", "keystone") })
	expectOneLine(t, ovnDocker(t, vm, fresh, "--timeout", "30s", "list", "networks"), "keystone")
	stack(t, "start", "keystone")
	if r := ovnDocker(t, vm, fresh, "list", "networks"); r.code != 0 {
		t.Fatalf("keystone is back but: %s", r)
	}
	recovers(t, s, vm, ls, "ks")
}

// TestOutageTokenRevoked: the token a VM's runs share is revoked (or expires) between
// runs: the next run authenticates again with the VM's credentials. A token given with
// --cred cannot be renewed: its revocation is one clear line.
func TestOutageTokenRevoked(t *testing.T) {
	t.Parallel()
	s, vm, ls := outageSetup(t)
	mustOVNDocker(t, vm, "list", "networks") // caches a token
	pc, eo := s.Provider(t, "admin")
	ic, err := openstack.NewIdentityV3(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(vm.Env["OVN_DOCKER_STATE_DIR"] + "/tokens")
	if len(entries) == 0 {
		t.Fatal("no cached token")
	}
	for _, e := range entries {
		b, err := os.ReadFile(vm.Env["OVN_DOCKER_STATE_DIR"] + "/tokens/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		tok := strings.SplitN(strings.SplitN(string(b), `"token":"`, 2)[1], `"`, 2)[0]
		if err := tokens.Revoke(context.Background(), ic, tok).Err; err != nil {
			t.Fatalf("revoke the cached token: %v", err)
		}
	}
	time.Sleep(1100 * time.Millisecond) // Keystone's revocations have a one-second grain
	if r := runOut(t, vm, nil, ls, "rev", "2m"); r.code != 0 {
		t.Fatalf("run after the shared token was revoked: %s", r)
	}
	mustOVNDocker(t, vm, "rm", "-f", "rev")

	tpc, _ := s.Provider(t, "tenant-a")
	tok := tpc.TokenID
	if err := tokens.Revoke(context.Background(), ic, tok).Err; err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	r := ovnDocker(t, vm, nil, "--cred="+tok, "--network", ls, "run", "-d", "busybox:local", "true")
	expectOneLine(t, r, "token")
	if strings.Contains(r.stderr, tok) {
		t.Fatal("the token appears in the error")
	}
	recovers(t, s, vm, ls, "rev2")
}

func TestOutageVMOVSDBRestarted(t *testing.T) {
	t.Parallel()
	s, vm, ls := outageSetup(t)
	mustOVNDocker(t, vm, "--network", ls, "run", "-d", "--name", "ovs1", "busybox:local", "sleep", "600")
	stack(t, "stop", vm.Name+"-ovsdb")
	t.Cleanup(func() { stack(t, "start", vm.Name+"-ovsdb") })
	expectOneLine(t, runOut(t, vm, nil, ls, "ovs2", "20s"), "Open vSwitch")
	stack(t, "start", vm.Name+"-ovsdb")
	// The running container kept its port; the next run works.
	e := entryOf(t, vm, "ovs1", "eth0")
	if got := strings.TrimSpace(vm.VSCtl(t, "get", "port", e.HostIf, "tag")); got != itoa(e.VLAN) {
		t.Fatalf("after the restart the access port has tag %s, want %d", got, e.VLAN)
	}
	mustOVNDocker(t, vm, "rm", "-f", "ovs1")
	recovers(t, s, vm, ls, "ovs3")
}

func TestOutageOVNNBRestarted(t *testing.T) {
	s, vm, ls := outageSetup(t)
	stack(t, "stop", "ovn-nb")
	t.Cleanup(func() { stack(t, "start", "ovn-nb") })
	// Neutron waits for the NB: the run's deadline ends it, and its rollback is bounded too.
	t0 := time.Now()
	r := runOut(t, vm, nil, ls, "nb1", "20s")
	if took := time.Since(t0); took > 20*time.Second+45*time.Second {
		t.Errorf("a run with --timeout 20s took %s while the NB was down", took.Round(time.Second))
	}
	if r.code != 0 {
		expectOneLine(t, r)
	}
	stack(t, "start", "ovn-nb")
	if r.code == 0 {
		mustOVNDocker(t, vm, "rm", "-f", "nb1")
	}
	// Neutron needs a moment to find the NB again: with a Raft cluster, to find which
	// member leads once they are all back (its client tries one member after another;
	// seen: 72 s). Each failed run in the meantime is one clear line.
	took := waitUntil(t, "a run after the NB restart", func() (bool, string) {
		r := runOut(t, vm, nil, ls, "nb2", "1m")
		if r.code == 0 {
			return true, ""
		}
		expectOneLine(t, r)
		return false, r.String()
	})
	t.Logf("the first run after the NB came back succeeded %s later", took.Round(time.Second))
	mustOVNDocker(t, vm, "rm", "-f", "nb2")
	recovers(t, s, vm, ls, "nb3")
}

// stack runs hack/stack.sh with the arguments.
func stack(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("../../hack/stack.sh", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("stack.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
