//go:build integration

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// registryBin is Debian's registry as hack/registry.sh unpacks it.
const registryBin = "/var/cache/ovn-docker-registry/usr/bin/docker-registry"

// startRegistry runs a registry with basic auth (alice) on 127.0.0.1:5001 inside the
// VM: its dockerd takes a loopback registry without TLS.
func startRegistry(t *testing.T, vm *testutil.VM, password string) string {
	t.Helper()
	if _, err := os.Stat(registryBin); err != nil {
		t.Fatalf("no registry (hack/registry.sh installs it): %v", err)
	}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`version: 0.1
storage:
  filesystem:
    rootdirectory: %s/data
http:
  addr: 127.0.0.1:5001
auth:
  htpasswd:
    realm: ovn-docker-tests
    path: %s/htpasswd
`, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := vm.Command(ctx, registryBin, "serve", filepath.Join(dir, "config.yml"))
	log, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait(); log.Close() })
	waitUntil(t, "the registry answers", func() (bool, string) {
		out, err := vm.Try("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:5001/v2/")
		return err == nil && strings.TrimSpace(out) == "401", out
	})
	return "127.0.0.1:5001"
}

// dockerWith runs the docker CLI in the VM with its own Docker configuration folder.
func dockerWith(t *testing.T, vm *testutil.VM, configDir, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := vm.Command(ctx, "docker", append([]string{"--config", configDir}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRunPullsWithRegistryCredentials: run pulls a missing image with the credentials
// docker login keeps (DOCKER_CONFIG) and says so in docker's words (one line: not on a
// terminal), and is refused in one line without them; the password is never printed;
// nothing is left either way.
func TestRunPullsWithRegistryCredentials(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	const password = "reg-s3cret-pw"
	reg := startRegistry(t, vm, password)
	ls := tenantNetwork(t, vm, "pull-"+vm.Name)
	t.Cleanup(func() { cleanVM(t, vm) })

	logged := t.TempDir()
	image := reg + "/private/box:1"
	dockerWith(t, vm, logged, password+"\n", "login", reg, "-u", "alice", "--password-stdin")
	dockerWith(t, vm, logged, "", "tag", "busybox:local", image)
	dockerWith(t, vm, logged, "", "push", image)
	dockerWith(t, vm, logged, "", "rmi", image)
	t.Cleanup(func() { _, _ = dockerIn(vm, "rmi", "-f", image) })

	r := ovnDocker(t, vm, []string{"DOCKER_CONFIG=" + t.TempDir()}, "--standalone", "--network", ls, "run", "--rm", image, "true")
	last := strings.TrimSpace(r.stderr)
	if i := strings.LastIndex(last, "\n"); i >= 0 {
		last = last[i+1:]
	}
	if r.code != 1 || !strings.HasPrefix(last, "ovn-docker: ") || !strings.Contains(last, "no basic auth credentials") {
		t.Fatalf("without credentials: want a one-line refusal naming the missing credentials\n%s", r)
	}
	assertClean(t, s, vm)

	r = ovnDocker(t, vm, []string{"DOCKER_CONFIG=" + logged}, "--standalone", "--network", ls, "run", "--rm", image, "sh", "-c", "echo pulled-and-ran")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "pulled-and-ran" ||
		strings.TrimSpace(r.stderr) != "Status: Downloaded newer image for "+image {
		t.Fatalf("with the credentials of docker login:\n%s", r)
	}
	if strings.Contains(r.stdout+r.stderr, password) {
		t.Fatalf("the registry password was printed:\n%s", r)
	}
	assertClean(t, s, vm)
}
