package testutil

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/flock"
)

// DefaultStackDir is where hack/stack.sh keeps the sandbox stack unless
// OVN_DOCKER_STACK_DIR says otherwise.
const DefaultStackDir = "/var/lib/ovn-docker-stack"

// Stack is the running sandbox stack of hack/stack.sh, as its env files describe it.
type Stack struct {
	Dir string
	Env map[string]string // stack.env: admin OS_*, STACK_* addresses
	VMs []*VM
}

// VM is one simulated VM of the stack.
type VM struct {
	Name string
	Env  map[string]string // vmN/env: the tenant user's OS_*, OVN_DOCKER_*, DOCKER_HOST
}

// LoadStack reads the stack's env files. Tests that call it need the stack: its absence
// fails the test, so a suite run without the stack cannot pass by skipping.
func LoadStack(t testing.TB) *Stack {
	t.Helper()
	dir := os.Getenv("OVN_DOCKER_STACK_DIR")
	if dir == "" {
		dir = DefaultStackDir
	}
	env, err := ReadEnvFile(filepath.Join(dir, "stack.env"))
	if err != nil {
		t.Fatalf("the sandbox stack is not up (run hack/stack.sh up --docker): %v", err)
	}
	s := &Stack{Dir: dir, Env: env}
	for _, name := range strings.Fields(env["STACK_VMS"]) {
		venv, err := ReadEnvFile(filepath.Join(dir, name, "env"))
		if err != nil {
			t.Fatalf("stack VM %s: %v", name, err)
		}
		s.VMs = append(s.VMs, &VM{Name: name, Env: venv})
	}
	sort.Slice(s.VMs, func(i, j int) bool { return s.VMs[i].Name < s.VMs[j].Name })
	return s
}

// VM returns the stack's VM by name, failing the test when it does not exist.
func (s *Stack) VM(t testing.TB, name string) *VM {
	t.Helper()
	for _, vm := range s.VMs {
		if vm.Name == name {
			return vm
		}
	}
	t.Fatalf("the stack has no VM %q (it has %d)", name, len(s.VMs))
	return nil
}

// CloudsFile is the stack's clouds.yaml, with clouds "admin", "tenant-a", "tenant-b".
func (s *Stack) CloudsFile() string { return filepath.Join(s.Dir, "clouds.yaml") }

// VIFID is the VM's Neutron port (its vif-id).
func (vm *VM) VIFID() string { return vm.Env["OVN_DOCKER_VIF_ID"] }

// OVSDB is the VM's Open_vSwitch database endpoint.
func (vm *VM) OVSDB() string { return vm.Env["OVN_DOCKER_OVSDB"] }

// Environ is os.Environ() with the VM's variables laid over it, minus variables of the
// calling shell that would confuse a tool run inside the VM.
func (vm *VM) Environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OS_") || strings.HasPrefix(k, "OVN_DOCKER_") || k == "DOCKER_HOST" {
			continue
		}
		env = append(env, kv)
	}
	keys := make([]string, 0, len(vm.Env))
	for k := range vm.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+vm.Env[k])
	}
	return append(env, extra...)
}

// Command is a command that runs inside the VM's network namespace with the VM's
// environment, the way a tenant's shell in that VM would run it.
func (vm *VM) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", vm.Name, name}, args...)...)
	cmd.Env = vm.Environ()
	return cmd
}

// Run runs a command inside the VM and returns its combined output; a failure fails the test.
func (vm *VM) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := vm.Try(name, args...)
	if err != nil {
		t.Fatalf("in %s: %s %s: %v\n%s", vm.Name, name, strings.Join(args, " "), err, out)
	}
	return out
}

// Try runs a command inside the VM and returns its combined output and error.
func (vm *VM) Try(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var buf bytes.Buffer
	cmd := vm.Command(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// Ping sends count pings from inside a network namespace and reports whether all came back.
func Ping(netnsName, addr string, count int) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count+5)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", netnsName, "ping", "-n", "-c", strconv.Itoa(count),
		"-i", "0.2", "-W", "1", addr).CombinedOutput()
	return err == nil && strings.Contains(string(out), fmt.Sprintf("%d received", count)), string(out)
}

// ReadEnvFile parses the `export KEY=VALUE` lines hack/stack.sh writes.
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s: not KEY=VALUE: %q", path, line)
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	return env, sc.Err()
}

// MustRun runs a command on the machine (root netns) and returns its output, failing the
// test on error. Tests use it to check results with the stack's own CLIs.
func MustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NBCtl runs ovn-nbctl against the stack's Northbound database.
func (s *Stack) NBCtl(t testing.TB, args ...string) string {
	t.Helper()
	return MustRun(t, "ovn-nbctl", append([]string{"--db=" + s.Env["STACK_NB"]}, args...)...)
}

// VSCtl runs ovs-vsctl against the VM's Open_vSwitch database.
func (vm *VM) VSCtl(t testing.TB, args ...string) string {
	t.Helper()
	return MustRun(t, "ovs-vsctl", append([]string{"--db=" + vm.OVSDB()}, args...)...)
}

// leases hands the stack's VMs to tests, one test at a time per VM, so that tests
// marked parallel never share a VM (each asserts that nothing is left in its VMs). A
// lease is also a lock file in the VM's folder, held while the test runs: test binaries
// run at the same time on one stack (an engineer's and another's) do not share a VM
// either.
var leases = struct {
	sync.Mutex
	cond  *sync.Cond
	taken map[string]bool
}{taken: map[string]bool{}}

func init() { leases.cond = sync.NewCond(&leases.Mutex) }

// vmLock opens the lock file of a VM.
func vmLock(vm *VM) (*os.File, error) {
	// The VM's folder holds its state directory.
	dir := filepath.Dir(vm.Env["OVN_DOCKER_STATE_DIR"])
	return os.OpenFile(filepath.Join(dir, "lease.lock"), os.O_RDWR|os.O_CREATE, 0o600)
}

// lease waits until n of the candidate VMs are free, takes them until the test ends.
// With key, the n VMs have n different keys (their hypervisors, say).
func lease(t testing.TB, candidates []*VM, n int, key func(*VM) string) []*VM {
	t.Helper()
	if key == nil {
		key = func(vm *VM) string { return vm.Name }
	}
	leases.Lock()
	defer leases.Unlock()
	for {
		var free []*VM
		keys := map[string]bool{}
		for _, vm := range candidates {
			if !leases.taken[vm.Name] {
				free = append(free, vm)
				keys[key(vm)] = true
			}
		}
		if len(keys) < n {
			leases.cond.Wait()
			continue
		}
		// Of those this process does not use, the ones no other process holds.
		var got []*VM
		var locks []*os.File
		used := map[string]bool{}
		for _, vm := range free {
			if len(got) == n {
				break
			}
			if used[key(vm)] {
				continue
			}
			f, err := vmLock(vm)
			if err != nil {
				t.Fatalf("lease %s: %v", vm.Name, err)
			}
			ok, err := flock.TryLock(f, unix.LOCK_EX)
			if err != nil {
				t.Fatalf("lease %s: %v", vm.Name, err)
			}
			if !ok {
				f.Close()
				continue
			}
			got, locks = append(got, vm), append(locks, f)
			used[key(vm)] = true
		}
		if len(got) < n {
			for _, f := range locks {
				flock.Unlock(f)
			}
			// Another test binary holds some: wait in the kernel for one of them.
			f, err := vmLock(free[0])
			if err != nil {
				t.Fatalf("lease %s: %v", free[0].Name, err)
			}
			leases.Unlock()
			err = flock.Lock(context.Background(), f, unix.LOCK_EX)
			leases.Lock()
			if err != nil {
				t.Fatalf("lease %s: %v", free[0].Name, err)
			}
			flock.Unlock(f)
			continue
		}
		for _, vm := range got {
			leases.taken[vm.Name] = true
		}
		t.Cleanup(func() {
			leases.Lock()
			for i, vm := range got {
				delete(leases.taken, vm.Name)
				flock.Unlock(locks[i])
			}
			leases.cond.Broadcast()
			leases.Unlock()
		})
		return got
	}
}

// TenantVMs leases n VMs of tenant-a for the test (see lease). OVN_DOCKER_E2E_VMS
// (comma-separated names) restricts the choice, so that suites run at the same time
// use separate VMs.
func (s *Stack) TenantVMs(t testing.TB, n int) []*VM {
	t.Helper()
	cands := s.tenantCandidates(t)
	if len(cands) < n {
		t.Fatalf("the test needs %d VMs of tenant-a, the stack gives %d (hack/stack.sh up --vms N)", n, len(cands))
	}
	return lease(t, cands, n, nil)
}

// SpreadVMs leases n VMs of tenant-a, each on a hypervisor of its own, and skips the
// test where the stack has fewer hypervisors with such VMs.
func (s *Stack) SpreadVMs(t testing.TB, n int) []*VM {
	t.Helper()
	cands := s.tenantCandidates(t)
	hvs := map[string]bool{}
	for _, vm := range cands {
		hvs[s.Hypervisor(vm)] = true
	}
	if len(hvs) < n {
		t.Skipf("the test needs VMs on %d hypervisors, the stack's VMs are on %d (hack/stack.sh up --hypervisors %d)", n, len(hvs), n)
	}
	return lease(t, cands, n, s.Hypervisor)
}

// Hypervisor is the hypervisor the VM runs on now (hack/stack.sh migrate moves it).
func (s *Stack) Hypervisor(vm *VM) string {
	b, err := os.ReadFile(filepath.Join(s.Dir, vm.Name, "hypervisor"))
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return "hv1"
	}
	return strings.TrimSpace(string(b))
}

func (s *Stack) tenantCandidates(t testing.TB) []*VM {
	var cands []*VM
	if names := os.Getenv("OVN_DOCKER_E2E_VMS"); names != "" {
		for _, name := range strings.Split(names, ",") {
			cands = append(cands, s.VM(t, strings.TrimSpace(name)))
		}
		return cands
	}
	for _, vm := range s.VMs {
		if vm.Env["STACK_VM_TENANT"] == "a" {
			cands = append(cands, vm)
		}
	}
	return cands
}

// TenantBVM returns a VM of tenant-b (OVN_DOCKER_E2E_VM_B names it), failing the test
// when the stack has none.
func (s *Stack) TenantBVM(t testing.TB) *VM {
	t.Helper()
	if name := os.Getenv("OVN_DOCKER_E2E_VM_B"); name != "" {
		return lease(t, []*VM{s.VM(t, name)}, 1, nil)[0]
	}
	var cands []*VM
	for _, vm := range s.VMs {
		if vm.Env["STACK_VM_TENANT"] == "b" {
			cands = append(cands, vm)
		}
	}
	if len(cands) == 0 {
		t.Fatal("the test needs a VM of tenant-b (hack/stack.sh up --vms 3 --tenants a,a,b)")
	}
	return lease(t, cands, 1, nil)[0]
}
