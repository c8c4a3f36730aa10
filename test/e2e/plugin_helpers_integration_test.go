//go:build integration

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// pluginDaemon is "ovn-docker daemon" running inside a VM, serving the VM's dockerd.
type pluginDaemon struct {
	vm     *testutil.VM
	binary string   // the ovn-docker build it runs; "" is bin
	env    []string // KEY=VALUE laid over the VM's
	args   []string
	log    string
	cmd    *exec.Cmd
	done   chan struct{}
}

// startPlugin starts the daemon in the VM and waits until it answers on its socket. The
// test's cleanup stops it (after the test's own cleanups, registered later, ran) and
// shows its log when the test failed.
func startPlugin(t *testing.T, vm *testutil.VM, args ...string) *pluginDaemon {
	t.Helper()
	d := &pluginDaemon{vm: vm, args: args, log: filepath.Join(t.TempDir(), vm.Name+"-daemon.log")}
	d.start(t)
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(d.log)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 80 {
				lines = lines[len(lines)-80:]
			}
			t.Logf("daemon log of %s (last lines):\n%s", vm.Name, strings.Join(lines, "\n"))
		}
	})
	return d
}

func (d *pluginDaemon) socket() string {
	return filepath.Join(d.vm.Env["STACK_VM_PLUGIN_DIR"], "ovn.sock")
}

func (d *pluginDaemon) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(d.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	binary := d.binary
	if binary == "" {
		binary = bin
	}
	args := append([]string{"netns", "exec", d.vm.Name, binary, "--log-level", "debug", "daemon",
		"--plugin-dir", d.vm.Env["STACK_VM_PLUGIN_DIR"]}, d.args...)
	// ip netns exec execs the command: the process is the daemon itself.
	d.cmd = exec.Command("ip", args...)
	d.cmd.Env = d.vm.Environ(d.env...)
	d.cmd.Stdout, d.cmd.Stderr = f, f
	if err := d.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start the daemon in %s: %v", d.vm.Name, err)
	}
	d.done = make(chan struct{})
	go func() {
		_ = d.cmd.Wait()
		f.Close()
		close(d.done)
	}()
	// Nothing announces the socket: it is tried until it answers, as long as the test's
	// time lasts.
	ctx := testutil.Context(t)
	for {
		if pluginAnswers(d.socket()) {
			return
		}
		select {
		case <-d.done:
			b, _ := os.ReadFile(d.log)
			t.Fatalf("the daemon in %s exited at start:\n%s", d.vm.Name, b)
		case <-ctx.Done():
			t.Fatalf("the daemon in %s does not answer on %s", d.vm.Name, d.socket())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// pluginAnswers reports whether the socket answers Docker's handshake.
func pluginAnswers(sock string) bool {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Post("http://plugin/Plugin.Activate", "application/json", bytes.NewReader(nil))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (d *pluginDaemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// kill9 kills the daemon the hard way: no shutdown, the socket stays.
func (d *pluginDaemon) kill9(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
}

// stop sends SIGTERM and waits for a graceful exit, killing the daemon if it hangs.
func (d *pluginDaemon) stop(t *testing.T) {
	t.Helper()
	if d.exited() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	// Its exit is the event; the test's time (also in a cleanup) only bounds it.
	ctx, cancel := testutil.TimeoutContext(t)
	defer cancel()
	select {
	case <-d.done:
	case <-ctx.Done():
		t.Errorf("the daemon in %s did not stop on SIGTERM", d.vm.Name)
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.done
	}
}

// restartDockerd stops the VM's dockerd with SIGTERM, as a system shutdown would, and
// starts it again through the stack script.
func restartDockerd(t *testing.T, s *testutil.Stack, vm *testutil.VM) {
	t.Helper()
	pidFile := filepath.Join(s.Dir, vm.Name, "dockerd.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", pidFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop dockerd %d of %s: %v", pid, vm.Name, err)
	}
	waitUntil(t, fmt.Sprintf("dockerd %d of %s stopped", pid, vm.Name), func() (bool, string) {
		return syscall.Kill(pid, 0) != nil, "still running"
	})
	// The stack script starts this VM's dockerd again, and touches nothing else: other
	// tests hold the other VMs.
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "hack", "stack.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, script, "start", vm.Name+"-dockerd").CombinedOutput()
	if err != nil {
		t.Fatalf("bring dockerd of %s back: %v\n%s", vm.Name, err, out)
	}
	if out, err := dockerIn(vm, "version"); err != nil {
		t.Fatalf("dockerd of %s after restart: %v\n%s", vm.Name, err, out)
	}
}

// mustDocker runs the docker CLI in the VM and fails the test when it fails.
func mustDocker(t *testing.T, vm *testutil.VM, args ...string) string {
	t.Helper()
	out, err := dockerIn(vm, args...)
	if err != nil {
		t.Fatalf("docker %s in %s: %v\n%s", strings.Join(args, " "), vm.Name, err, out)
	}
	return strings.TrimSpace(dropForwardingWarning(out))
}

// dropForwardingWarning removes the docker CLI's warning about IPv4 forwarding, which the
// stack's dockerd (--ip-forward=false) prints on every run.
func dropForwardingWarning(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, "IPv4 forwarding is disabled") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// pluginNetwork makes a Docker network of the plugin in the VM (extra: more options) and
// removes it in the test's cleanup.
func pluginNetwork(t *testing.T, vm *testutil.VM, name string, extra ...string) string {
	t.Helper()
	args := append([]string{"network", "create", "-d", "ovn", "--ipam-driver", "ovn"}, extra...)
	id := mustDocker(t, vm, append(args, name)...)
	t.Cleanup(func() { _, _ = dockerIn(vm, "network", "rm", name) })
	return id
}

// adoptNetwork makes, in the VM, a Docker network on the existing Neutron network name.
func adoptNetwork(t *testing.T, vm *testutil.VM, name string) string {
	t.Helper()
	opt := "neutron.net.name=" + name
	return pluginNetwork(t, vm, name, "-o", opt, "--ipam-opt", opt)
}

// runIn starts a container on the network in the VM, removed in the test's cleanup.
func runIn(t *testing.T, vm *testutil.VM, name string, args ...string) {
	t.Helper()
	mustDocker(t, vm, append([]string{"run", "-d", "--name", name}, args...)...)
	t.Cleanup(func() { _, _ = dockerIn(vm, "rm", "-f", name) })
}

// neutronNetworkNamed waits until Neutron has exactly one network of that name (the
// daemon names the network it made once Docker shows it).
func neutronNetworkNamed(t *testing.T, nc *gophercloud.ServiceClient, name string) networks.Network {
	t.Helper()
	var got networks.Network
	waitUntil(t, fmt.Sprintf("one Neutron network named %s", name), func() (bool, string) {
		pages, err := networks.List(nc, networks.ListOpts{Name: name}).AllPages(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		all, _ := networks.ExtractNetworks(pages)
		if len(all) == 1 {
			got = all[0]
		}
		return len(all) == 1, fmt.Sprintf("%d", len(all))
	})
	return got
}

// endpointOf is a container's endpoint on a network as docker network inspect shows it.
type endpointOf struct {
	Name, EndpointID, MacAddress, IPv4Address, IPv6Address string
}

func inspectEndpoints(t *testing.T, vm *testutil.VM, network string) map[string]endpointOf {
	t.Helper()
	var eps map[string]endpointOf
	out := mustDocker(t, vm, "network", "inspect", network, "-f", "{{json .Containers}}")
	if err := json.Unmarshal([]byte(out), &eps); err != nil {
		t.Fatalf("inspect %s: %v\n%s", network, err, out)
	}
	byName := map[string]endpointOf{}
	for _, e := range eps {
		byName[e.Name] = e
	}
	return byName
}

// addressOf is a container's IPv4 address on a Docker network, without the prefix.
func addressOf(t *testing.T, vm *testutil.VM, network, container string) string {
	t.Helper()
	e, ok := inspectEndpoints(t, vm, network)[container]
	if !ok {
		t.Fatalf("docker network inspect %s in %s shows no %s", network, vm.Name, container)
	}
	return strings.SplitN(e.IPv4Address, "/", 2)[0]
}

// portWithIP returns the Neutron port on the network that holds the address.
func portWithIP(t *testing.T, nc *gophercloud.ServiceClient, networkID, ip string) ports.Port {
	t.Helper()
	pages, err := ports.List(nc, ports.ListOpts{NetworkID: networkID, FixedIPs: []ports.FixedIPOpts{{IPAddress: ip}}}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all, _ := ports.ExtractPorts(pages)
	if len(all) != 1 {
		t.Fatalf("Neutron has %d ports with %s on network %s, want 1", len(all), ip, networkID)
	}
	return all[0]
}

// subportVLANs maps the VM trunk's subports to their VLANs.
func subportVLANs(t *testing.T, nc *gophercloud.ServiceClient, vm *testutil.VM) map[string]int {
	t.Helper()
	out := map[string]int{}
	pages, err := trunks.List(nc, trunks.ListOpts{PortID: vm.VIFID()}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	trs, _ := trunks.ExtractTrunks(pages)
	for _, tr := range trs {
		for _, sp := range tr.Subports {
			out[sp.PortID] = sp.SegmentationID
		}
	}
	return out
}

// ifaceIn returns "MAC ADDR/LEN" of an interface inside a container ("" when missing).
func ifaceIn(t *testing.T, vm *testutil.VM, container, ifname string) (mac, addr string) {
	t.Helper()
	out, err := dockerIn(vm, "exec", container, "ip", "-o", "addr", "show", "dev", ifname)
	if err != nil {
		return "", ""
	}
	for _, f := range strings.Split(out, "\n") {
		fs := strings.Fields(f)
		for i := 0; i+1 < len(fs); i++ {
			if fs[i] == "inet" {
				addr = fs[i+1]
			}
		}
	}
	m, _ := dockerIn(vm, "exec", container, "cat", "/sys/class/net/"+ifname+"/address")
	return strings.TrimSpace(m), addr
}

// pingFrom pings from a container until 3 pings in a row come back (OVN programs a new
// port when it does), false once the test's time is up.
func pingFrom(t *testing.T, vm *testutil.VM, container, ip string) (bool, string) {
	ctx := testutil.Context(t)
	for {
		out, err := dockerIn(vm, "exec", container, "ping", "-c", "3", "-W", "1", ip)
		if err == nil && strings.Contains(out, "3 packets received") {
			return true, out
		}
		select {
		case <-ctx.Done():
			return false, out
		case <-time.After(500 * time.Millisecond): // a rate: how often it tries again
		}
	}
}

// pluginState is the plugin's part of the VM's state file.
type pluginState struct {
	Pools    map[string]json.RawMessage `json:"docker_pools"`
	Networks map[string]json.RawMessage `json:"docker_networks"`
}

func readPluginState(t *testing.T, vm *testutil.VM) pluginState {
	t.Helper()
	var st pluginState
	b, err := os.ReadFile(filepath.Join(vm.Env["OVN_DOCKER_STATE_DIR"], "state.json"))
	if os.IsNotExist(err) {
		return st
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// assertPluginClean fails the test when anything of ovn-docker is left in the VM: the
// footprint of measure (Neutron ports, subports, OVS ports, veths, attachments), the
// plugin's records, and networks of the plugin in the VM's dockerd.
func assertPluginClean(t *testing.T, s *testutil.Stack, vm *testutil.VM) {
	t.Helper()
	assertClean(t, s, vm)
	if st := readPluginState(t, vm); len(st.Pools)+len(st.Networks) != 0 {
		t.Fatalf("the plugin's records are left in %s: pools %v networks %v", vm.Name, keys(st.Pools), keys(st.Networks))
	}
	if out := mustDocker(t, vm, "network", "ls", "-q", "--filter", "driver=ovn"); out != "" {
		t.Fatalf("networks of the plugin left in %s's dockerd: %s", vm.Name, out)
	}
}

// assertNetworkGone fails the test when the Neutron network still exists.
func assertNetworkGone(t *testing.T, nc *gophercloud.ServiceClient, id string) {
	t.Helper()
	if _, err := networks.Get(context.Background(), nc, id).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("Neutron network %s still exists (%v)", id, err)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	c := slices.Clone(ds)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}
