//go:build integration

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/regions"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestDoctorOfTheCloud: the faults that lie in the cloud, not the VM, each injected with
// a second real service beside the stack's: a Neutron without the trunk plugin (in a
// region of its own), and a Keystone whose clock is ten minutes ahead (libfaketime). The
// failing line names each; a fix it prints, applied, makes doctor green.
func TestDoctorOfTheCloud(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	startPlugin(t, vm)
	if _, failed, r := doctorIn(t, vm, nil); len(failed) > 0 {
		t.Fatalf("before: failed %v\n%s", failed, r)
	}

	t.Run("no trunk extension", func(t *testing.T) {
		const port = 9697
		startSecondNeutron(t, s, port)
		relayIntoVM(t, vm, port)
		waitUntil(t, "the second Neutron answers in "+vm.Name, func() (bool, string) {
			out, err := vm.Try("curl", "-sf", fmt.Sprintf("http://127.0.0.1:%d/", port))
			return err == nil, out
		})
		regionTwo(t, s, fmt.Sprintf("http://127.0.0.1:%d/", port))
		two := []string{"OS_REGION_NAME=RegionTwo"}
		checks, failed, r := doctorIn(t, vm, two)
		c := checks["trunk extension"]
		if c.OK || failed[0] != "trunk extension" || !strings.Contains(c.Detail, "Neutron has no trunk extension") ||
			!strings.Contains(c.Fix, "service_plugins = trunk") || !strings.Contains(c.Fix, "--mode binding-profile with admin credentials") {
			t.Fatalf("want the trunk extension failing first, with both fixes; failed %v, %+v\n%s", failed, c, r)
		}
		// The user's fix, on the same Neutron: the legacy mode, with admin credentials.
		pw, err := os.ReadFile(filepath.Join(s.Dir, "secrets", "admin"))
		if err != nil {
			t.Fatal(err)
		}
		admin := append(two, "OS_USERNAME=admin", "OS_PASSWORD="+strings.TrimSpace(string(pw)), "OS_PROJECT_NAME=admin")
		if _, failed, r := doctorIn(t, vm, admin, "--mode", "binding-profile"); len(failed) > 0 {
			t.Fatalf("--mode binding-profile with admin credentials: failed %v\n%s", failed, r)
		}
		// The operator's fix is the stack's own Neutron: the same cloud with service_plugins
		// = ...,trunk (a second one cannot load the trunk plugin without OVN's driver, and
		// with it would join the first's hash ring of OVN events).
		if _, failed, r := doctorIn(t, vm, nil); len(failed) > 0 {
			t.Fatalf("the stack's Neutron, with trunks: failed %v\n%s", failed, r)
		}
	})

	t.Run("Keystone's clock ten minutes ahead", func(t *testing.T) {
		const port = 5001
		stopKeystone := startKeystone(t, s, port, "+10m")
		relayIntoVM(t, vm, port)
		waitUntil(t, "the second Keystone answers in "+vm.Name, func() (bool, string) {
			out, err := vm.Try("curl", "-sf", fmt.Sprintf("http://127.0.0.1:%d/v3", port))
			return err == nil, out
		})
		skewed := []string{fmt.Sprintf("OS_AUTH_URL=http://127.0.0.1:%d/v3", port)}
		checks, failed, r := doctorIn(t, vm, skewed)
		c := checks["clock"]
		if c.OK || failed[0] != "clock" || !regexp.MustCompile(`clock is -(9m5\d|10m[01])s from Keystone's`).MatchString(c.Detail) ||
			!strings.Contains(c.Fix, "synchronise the clock") {
			t.Fatalf("want the clock failing first, about ten minutes behind Keystone's, with a fix; failed %v, %+v\n%s", failed, c, r)
		}
		// Synchronised (the machine's one clock cannot be moved for one VM: Keystone's is
		// put back instead), doctor is green through the same Keystone.
		stopKeystone()
		startKeystone(t, s, port, "")
		waitUntil(t, "the second Keystone answers again", func() (bool, string) {
			out, err := vm.Try("curl", "-sf", fmt.Sprintf("http://127.0.0.1:%d/v3", port))
			return err == nil, out
		})
		if _, failed, r := doctorIn(t, vm, skewed); len(failed) > 0 {
			t.Fatalf("clocks agreeing: failed %v\n%s", failed, r)
		}
	})
}

// startSecondNeutron runs another neutron-server on the stack's database, on its own
// port, without OVN's mechanism driver and without service plugins: an API server whose
// extensions lack the trunk. Without OVN's driver it does not join the stack's Neutron in
// OVN's hash ring (it would take a share of OVN's events, and, under the same host name,
// remove the first's members when it starts).
func startSecondNeutron(t *testing.T, s *testutil.Stack, port int) (stop func()) {
	t.Helper()
	dir := t.TempDir()
	conf, err := os.ReadFile(filepath.Join(s.Dir, "neutron", "neutron.conf"))
	if err != nil {
		t.Fatal(err)
	}
	c := regexp.MustCompile(`(?m)^service_plugins = .*$`).ReplaceAllString(string(conf), "service_plugins =")
	c = regexp.MustCompile(`(?m)^bind_port = .*$`).ReplaceAllString(c, fmt.Sprintf("bind_port = %d\nhost = ovn-docker-second-neutron", port))
	c = regexp.MustCompile(`(?m)^log_file = .*$`).ReplaceAllString(c, "log_file = "+filepath.Join(dir, "neutron.log"))
	ml2, err := os.ReadFile(filepath.Join(s.Dir, "neutron", "ml2_conf.ini"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^mechanism_drivers = .*$`).ReplaceAllString(string(ml2), "mechanism_drivers =")
	m = regexp.MustCompile(`(?m)^extension_drivers = .*$`).ReplaceAllString(m, "extension_drivers = port_security")
	for name, body := range map[string]string{"neutron.conf": c, "ml2_conf.ini": m} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("neutron-server", "--config-file", filepath.Join(dir, "neutron.conf"),
		"--config-file", filepath.Join(dir, "ml2_conf.ini"))
	return startService(t, cmd, filepath.Join(dir, "neutron.out"))
}

// startKeystone runs another Keystone on the stack's database and keys, on its own port,
// its clock offset by libfaketime ("+10m"; "" for none).
func startKeystone(t *testing.T, s *testutil.Stack, port int, offset string) (stop func()) {
	t.Helper()
	cmd := exec.Command("uwsgi", "--plugin", "python3", "--http-socket", fmt.Sprintf("127.0.0.1:%d", port),
		"--add-header", "Connection: close", "--route-run", "addheader:Date: ${httptime[]}",
		"--wsgi-file", "/usr/bin/keystone-wsgi-public", "--processes", "1", "--threads", "2", "--die-on-term", "--need-app")
	cmd.Env = append(os.Environ(), "OS_KEYSTONE_CONFIG_FILES="+filepath.Join(s.Dir, "keystone", "keystone.conf"))
	if offset != "" {
		cmd.Env = append(cmd.Env, "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1", "FAKETIME="+offset)
	}
	return startService(t, cmd, filepath.Join(t.TempDir(), "keystone.out"))
}

// startService starts cmd with its output in a file, in a process group of its own;
// stop kills the group (neutron-server's and uwsgi's workers with their parent) and
// waits, once.
func startService(t *testing.T, cmd *exec.Cmd, out string) (stop func()) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// relayIntoVM makes 127.0.0.1:port inside the VM reach 127.0.0.1:port outside, as the
// stack's relays do for Keystone and Neutron.
func relayIntoVM(t *testing.T, vm *testutil.VM, port int) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "relay.sock")
	outside := exec.Command("socat", fmt.Sprintf("UNIX-LISTEN:%s,fork,mode=600", sock), fmt.Sprintf("TCP:127.0.0.1:%d", port))
	startService(t, outside, sock+".out")
	inside := exec.Command("ip", "netns", "exec", vm.Name, "socat",
		fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr", port), "UNIX-CONNECT:"+sock)
	startService(t, inside, sock+".in.out")
}

// regionTwo adds a region whose network endpoint is url, for the test's time.
func regionTwo(t *testing.T, s *testutil.Stack, url string) {
	t.Helper()
	ctx := context.Background()
	pc, eo := s.Provider(t, "admin")
	id, err := openstack.NewIdentityV3(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := regions.Create(ctx, id, regions.CreateOpts{ID: "RegionTwo"}).Extract(); err != nil && !gophercloud.ResponseCodeIs(err, 409) {
		t.Fatalf("region: %v", err)
	}
	t.Cleanup(func() { _ = regions.Delete(ctx, id, "RegionTwo").ExtractErr() })
	pages, err := services.List(id, services.ListOpts{ServiceType: "network"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := services.ExtractServices(pages)
	if err != nil || len(svcs) == 0 {
		t.Fatalf("the network service: %v", errors.Join(err, errors.New("none in the catalog")))
	}
	ep, err := endpoints.Create(ctx, id, endpoints.CreateOpts{Availability: gophercloud.AvailabilityPublic,
		Region: "RegionTwo", URL: url, ServiceID: svcs[0].ID}).Extract()
	if err != nil {
		t.Fatalf("endpoint: %v", err)
	}
	t.Cleanup(func() { _ = endpoints.Delete(ctx, id, ep.ID).ExtractErr() })
}
