//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// Pods of a real CRI runtime: containerd 2.x with its CRI plugin in each VM (hack/cri.sh),
// driven by crictl as a kubelet drives it, networked by ovn-docker-cni through the VM's
// agent.

// criRuntime is containerd in one VM.
type criRuntime struct {
	vm      *testutil.VM
	sock    string // containerd's socket
	confDir string // its CNI network configurations
	crictl  string
	log     string
}

// criScript runs hack/cri.sh.
func criScript(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join("..", "..", "hack", "cri.sh"), args...).CombinedOutput()
	return string(out), err
}

// startCRI starts containerd in the VM with a CNI network configuration for the Neutron
// network; the test's cleanup stops it.
func startCRI(t *testing.T, vm *testutil.VM, neutronNet string) *criRuntime {
	t.Helper()
	out, err := criScript("env", vm.Name)
	if err != nil {
		t.Fatalf("hack/cri.sh env: %v\n%s", err, out)
	}
	env := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	r := &criRuntime{vm: vm, sock: env["CRI_SOCK"], confDir: env["CRI_CONF_DIR"], crictl: filepath.Join(env["CRI_BIN"], "crictl"), log: env["CRI_LOG"]}
	if err := os.MkdirAll(r.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf, _ := json.Marshal(map[string]any{
		"cniVersion": "1.1.0", "name": "ovn-docker-pods",
		"plugins": []map[string]any{{"type": "ovn-docker-cni", "network": neutronNet, "stateDir": vm.Env["OVN_DOCKER_STATE_DIR"]}},
	})
	if err := os.WriteFile(filepath.Join(r.confDir, "10-ovn-docker.conflist"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	r.up(t)
	t.Cleanup(func() {
		if out, err := criScript("down", vm.Name); err != nil {
			t.Errorf("hack/cri.sh down %s: %v\n%s", vm.Name, err, out)
		}
		if t.Failed() {
			b, _ := os.ReadFile(r.log)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 40 {
				lines = lines[len(lines)-40:]
			}
			t.Logf("containerd log of %s (last lines):\n%s", vm.Name, strings.Join(lines, "\n"))
		}
	})
	return r
}

func (r *criRuntime) up(t *testing.T) {
	t.Helper()
	if out, err := criScript("up", r.vm.Name, cniBinDir); err != nil {
		t.Fatalf("hack/cri.sh up %s: %v\n%s", r.vm.Name, err, out)
	}
}

// restart stops containerd and starts it again; pods and their netns stay.
func (r *criRuntime) restart(t *testing.T) {
	t.Helper()
	if out, err := criScript("down", r.vm.Name); err != nil {
		t.Fatalf("hack/cri.sh down %s: %v\n%s", r.vm.Name, err, out)
	}
	r.up(t)
}

// run runs crictl against the runtime and returns its output; its complaints (and
// warnings, such as a missing crictl.yaml) come with the error.
func (r *criRuntime) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, r.crictl, append([]string{"-r", "unix://" + r.sock, "-t", "2m"}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return string(out), err
}

func (r *criRuntime) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := r.run(args...)
	if err != nil {
		t.Fatalf("crictl %s in %s: %v\n%s", strings.Join(args, " "), r.vm.Name, err, out)
	}
	return strings.TrimSpace(out)
}

// criPod is a pod sandbox: its ID, address and network namespace.
type criPod struct {
	id, ip, netns string
}

// runPod runs a pod sandbox (crictl runp) and reads its address and netns.
func (r *criRuntime) runPod(t *testing.T, name string) criPod {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"name": name, "namespace": "e2e", "uid": name + "-uid", "attempt": 0},
		"linux":    map[string]any{},
	})
	f := filepath.Join(t.TempDir(), name+".json")
	if err := os.WriteFile(f, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	id := r.must(t, "runp", f)
	t.Logf("crictl runp %s in %s: %s", name, r.vm.Name, fmtMS(time.Since(t0)))
	t.Cleanup(func() {
		_, _ = r.run("stopp", id)
		_, _ = r.run("rmp", id)
	})
	var insp struct {
		Status struct {
			State   string `json:"state"`
			Network struct {
				IP string `json:"ip"`
			} `json:"network"`
		} `json:"status"`
		Info struct {
			RuntimeSpec struct {
				Linux struct {
					Namespaces []struct{ Type, Path string } `json:"namespaces"`
				} `json:"linux"`
			} `json:"runtimeSpec"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(r.must(t, "inspectp", "-o", "json", id)), &insp); err != nil {
		t.Fatal(err)
	}
	p := criPod{id: id, ip: insp.Status.Network.IP}
	for _, ns := range insp.Info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			p.netns = ns.Path
		}
	}
	if insp.Status.State != "SANDBOX_READY" || p.ip == "" || p.netns == "" {
		t.Fatalf("pod %s: state %s, address %q, netns %q", name, insp.Status.State, p.ip, p.netns)
	}
	return p
}

// networkReady is the runtime's NetworkReady condition (crictl info), and its message.
func (r *criRuntime) networkReady(t *testing.T) (bool, string) {
	t.Helper()
	var info struct {
		Status struct {
			Conditions []struct {
				Type    string `json:"type"`
				Status  bool   `json:"status"`
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"conditions"`
		} `json:"status"`
	}
	out := r.must(t, "info")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("crictl info: %v\n%s", err, out)
	}
	for _, c := range info.Status.Conditions {
		if c.Type == "NetworkReady" {
			return c.Status, c.Reason + ": " + c.Message
		}
	}
	t.Fatalf("crictl info has no NetworkReady condition:\n%s", out)
	return false, ""
}

// pingNS pings addr from the network namespace at path, count times.
func pingNS(path, addr string, count int) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count+5)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", "--net="+path, "ping", "-n", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "1", addr).CombinedOutput()
	return err == nil && strings.Contains(string(out), fmt.Sprintf("%d received", count)), string(out)
}

// TestCNIContainerdCRI: pod sandboxes of containerd's CRI in two VMs get Neutron ports and
// reach each other; the runtime's NetworkReady follows the plugin's STATUS; a containerd
// restart keeps pods networked; stopp and rmp release everything.
func TestCNIContainerdCRI(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	ls := uniq("LSK8")
	mustOVNDocker(t, vms[0], "--standalone", "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vms[0], nil, "--standalone", "delete", "network", ls) })
	var agents []*pluginDaemon
	var rts []*criRuntime
	for _, vm := range vms {
		agents = append(agents, startPlugin(t, vm))
		t.Cleanup(func() { cleanVM(t, vm) })
		rts = append(rts, startCRI(t, vm, ls))
	}
	waitUntil(t, "NetworkReady in "+vms[0].Name, func() (bool, string) { return rts[0].networkReady(t) })

	p1, p2 := rts[0].runPod(t, uniq("web")), rts[1].runPod(t, uniq("db"))
	if ok, out := pingNS(p1.netns, p2.ip, 3); !ok {
		t.Fatalf("pod %s cannot reach pod %s in the other VM: %s", p1.id[:12], p2.ip, out)
	}
	for i, vm := range vms {
		rows := ps(t, vm)
		if len(rows) != 1 || rows[0].Network != ls || rows[0].State != "attached" {
			t.Fatalf("ps in %s: %+v, want the pod's one interface on %s", vm.Name, rows, ls)
		}
		if ip := ipOf(rows[0]); ip != []string{p1.ip, p2.ip}[i] {
			t.Fatalf("the runtime says %s, ovn-docker %s", []string{p1.ip, p2.ip}[i], ip)
		}
	}

	// containerd restarted: the pod keeps its interface and its network.
	rts[0].restart(t)
	if out := rts[0].must(t, "pods", "-q", "--state", "ready"); !strings.Contains(out, p1.id) {
		t.Fatalf("after containerd's restart, ready pods: %q, want %s", out, p1.id)
	}
	if ok, out := pingNS(p1.netns, p2.ip, 3); !ok {
		t.Fatalf("after containerd's restart, pod %s cannot reach %s: %s", p1.id[:12], p2.ip, out)
	}

	// STATUS is the runtime's NetworkReady: false while the agent is down, with why.
	agents[0].stop(t)
	if ready, msg := rts[0].networkReady(t); ready || !strings.Contains(msg, "agent") {
		t.Fatalf("NetworkReady with the agent down: %v (%s), want false naming the agent", ready, msg)
	}
	agents[0].start(t)
	waitUntil(t, "NetworkReady again", func() (bool, string) { return rts[0].networkReady(t) })

	// stopp and rmp release the pods' ports.
	for i, p := range []criPod{p1, p2} {
		rts[i].must(t, "stopp", p.id)
		rts[i].must(t, "rmp", p.id)
	}
	for _, vm := range vms {
		assertClean(t, s, vm)
	}
}

// podman is Debian's podman with its CNI backend, in a VM: its own configuration,
// storage and network configuration directory, and a busybox image imported.
type podman struct {
	vm      *testutil.VM
	network string   // its CNI network's name
	conf    string   // CONTAINERS_CONF
	args    []string // global flags: storage of its own
}

func newPodman(t *testing.T, vm *testutil.VM, network, neutronNet string) *podman {
	t.Helper()
	dir := t.TempDir()
	netDir := filepath.Join(dir, "net.d")
	if err := os.Mkdir(netDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// podman 4's libcni reads results up to CNI 1.0.0.
	conflist, _ := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": network,
		"plugins": []map[string]any{{"type": "ovn-docker-cni", "network": neutronNet, "stateDir": vm.Env["OVN_DOCKER_STATE_DIR"]}},
	})
	if err := os.WriteFile(filepath.Join(netDir, network+".conflist"), conflist, 0o644); err != nil {
		t.Fatal(err)
	}
	// podman's default open-files limit is above what these machines allow.
	conf := fmt.Sprintf(`[network]
network_backend = "cni"
cni_plugin_dirs = [%q]
network_config_dir = %q
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
`, cniBinDir, netDir)
	p := &podman{vm: vm, network: network, conf: filepath.Join(dir, "containers.conf"),
		args: []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"), "--storage-driver", "vfs"}}
	if err := os.WriteFile(p.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "busybox.tar")
	testutil.MustRun(t, "sh", "-c", `set -e; d=$(mktemp -d); mkdir "$d/bin"; cp /bin/busybox "$d/bin/"
		for a in sh ping echo ip; do ln -s busybox "$d/bin/$a"; done; tar -C "$d" -cf `+img+` .; rm -rf "$d"`)
	if out, err := p.run("import", img, "localhost/busybox:local"); err != nil {
		t.Fatalf("podman import: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = p.run("rm", "-af") })
	return p
}

// run runs podman inside the VM: in its network namespace, and in the machine's mount
// namespace (not ip netns exec's own), where the agent can open the pod netns that
// podman mounts under /run/netns.
func (p *podman) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + p.vm.Name, "podman"}, append(slices.Clone(p.args), args...)...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCNIPodman: podman run --network on an ovn-docker network configuration (podman's
// CNI backend): the container reaches a pod in another VM, and when it ends (--rm)
// nothing of its interface is left.
func TestCNIPodman(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatalf("podman is not installed (hack/stack.sh installs it): %v", err)
	}
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	ls := uniq("LSPM")
	mustOVNDocker(t, vms[0], "--standalone", "create", "network", ls)
	t.Cleanup(func() { ovnDocker(t, vms[0], nil, "--standalone", "delete", "network", ls) })
	for _, vm := range vms {
		startPlugin(t, vm)
		t.Cleanup(func() { cleanVM(t, vm) })
	}
	// The pod to reach, made through libcni in the other VM.
	target := newCNINet(t, vms[1], ls).addPod(t)
	pm := newPodman(t, vms[0], uniq("podnet"), ls)
	out, err := pm.run("run", "--rm", "--network", pm.network, "localhost/busybox:local",
		"sh", "-c", "ip -o -4 addr show eth0; ping -c 3 -W 2 "+target.ip())
	if err != nil {
		t.Fatalf("podman run --network %s: %v\n%s", pm.network, err, out)
	}
	t.Logf("podman's container:\n%s", out)
	if !strings.Contains(out, "3 packets received") {
		t.Fatalf("the podman container did not reach %s:\n%s", target.ip(), out)
	}
	assertClean(t, s, vms[0])
}
