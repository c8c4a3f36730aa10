//go:build integration

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// bin is the ovn-docker binary under test, built once; binFault is the same with the
// fault-injection switch (OVN_DOCKER_FAULT) built in; cniBinDir holds ovn-docker-cni.
var bin, binFault, cniBinDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ovn-docker-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = testutil.BuildBinary(dir)
	if err == nil {
		binFault, err = testutil.BuildBinary(dir, "faultinject")
	}
	if err == nil {
		cniBinDir = filepath.Join(dir, "cni-bin")
		if err = os.Mkdir(cniBinDir, 0o755); err == nil {
			_, err = testutil.BuildCNIShim(cniBinDir)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one ovn-docker run printed and how it ended.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// ovnDocker runs ovn-docker inside the VM, as the VM's tenant user, with extra
// environment variables (KEY=VALUE) laid over the VM's.
func ovnDocker(t *testing.T, vm *testutil.VM, env []string, args ...string) result {
	t.Helper()
	return runBinary(t, bin, vm, env, args...)
}

// runBinary runs an ovn-docker build inside the VM; a process killed by a signal ends
// with code -1.
func runBinary(t *testing.T, binary string, vm *testutil.VM, env []string, args ...string) result {
	t.Helper()
	return runBinaryWithin(t, 3*time.Minute, binary, vm, env, args...)
}

// runBinaryWithin is runBinary with a deadline of its own.
func runBinaryWithin(t *testing.T, d time.Duration, binary string, vm *testutil.VM, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := vm.Command(ctx, binary, args...)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run ovn-docker in %s: %v", vm.Name, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// mustOVNDocker is ovnDocker that fails the test unless the command succeeded.
func mustOVNDocker(t *testing.T, vm *testutil.VM, args ...string) string {
	t.Helper()
	r := ovnDocker(t, vm, nil, args...)
	if r.code != 0 {
		t.Fatalf("ovn-docker %s in %s: %s", strings.Join(args, " "), vm.Name, r)
	}
	return r.stdout
}

// dockerIn runs the docker CLI against the VM's dockerd.
func dockerIn(vm *testutil.VM, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/docker", append([]string{"-H", vm.Env["DOCKER_HOST"]}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e7)
}
