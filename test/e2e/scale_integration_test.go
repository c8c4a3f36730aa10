//go:build integration

package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"

	"github.com/ovn-docker/ovn-docker/internal/metrics"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// The figures of SCALE.md (OVN_DOCKER_E2E_SCALE=1, as hack/bench.sh's scale part sets
// it): how Neutron's add_subports, OVN and the agent grow with the ports of one VM. They
// measure, they assert only that everything worked and that nothing is left behind.

func scaleOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("OVN_DOCKER_E2E_SCALE") != "1" {
		t.Skip("a measurement for SCALE.md: OVN_DOCKER_E2E_SCALE=1 runs it")
	}
}

// TestScaleSubports: add_subports and remove_subports on the VM's trunk with batches of
// 1, 10, 50, 100 and 200 ports (made beforehand in bulk), each call timed, and the time
// after its answer until OVN's northbound database shows every port of the batch under
// the VM's port (parent_name): Neutron's per-subport work, and what a pool's batch size buys.
func TestScaleSubports(t *testing.T) {
	scaleOnly(t)
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	t.Cleanup(func() { assertClean(t, s, vm) })
	ctx := testutil.Context(t)
	pc, eo := s.Provider(t, "tenant-"+vm.Env["STACK_VM_TENANT"])
	nc, err := neutron.New(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	ls := uniq("LSSUB")
	mustOVNDocker(t, vm, "--standalone", "create", "network", ls, "--subnet", "10.77.0.0/22")
	t.Cleanup(func() { ovnDocker(t, vm, nil, "--standalone", "delete", "network", ls) })
	network, err := nc.FindNetwork(ctx, ls)
	if err != nil {
		t.Fatal(err)
	}
	logQuota(t, s, vm, network.ProjectID)
	trunk, err := nc.EnsureTrunk(ctx, vm.VIFID())
	if err != nil {
		t.Fatal(err)
	}

	const most = 200
	var made []neutron.Port
	t.Cleanup(func() {
		// Its own time, not what is left of the test's: a test that ran out of time
		// must still take its 200 ports away (4 deletions at a time).
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		var ids []string
		for _, p := range made {
			ids = append(ids, p.ID)
		}
		_ = nc.RemoveSubports(ctx, trunk.ID, ids) // after a failure only; a port not on it is no error
		next := make(chan string)
		done := make(chan struct{})
		for range 4 {
			go func() {
				defer func() { done <- struct{}{} }()
				for id := range next {
					if err := nc.DeletePort(ctx, id); err != nil {
						t.Errorf("delete port %s: %v", id, err)
					}
				}
			}()
		}
		for _, id := range ids {
			next <- id
		}
		close(next)
		for range 4 {
			<-done
		}
	})
	var bulk []time.Duration
	for len(made) < most {
		var rs []neutron.PortRequest
		for i := 0; i < 50; i++ {
			rs = append(rs, neutron.PortRequest{NetworkID: network.ID, Mode: neutron.ModeTrunk, VIFID: vm.VIFID(),
				AttachmentID: fmt.Sprintf("scale%d", len(made)+i)})
		}
		t0 := time.Now()
		ps, err := nc.CreatePorts(ctx, rs)
		bulk = append(bulk, time.Since(t0))
		made = append(made, ps...)
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("bulk port create, 50 a call: %s per call (%d calls)", spread(bulk), len(bulk))

	tr, err := nc.TrunkOf(ctx, vm.VIFID())
	if err != nil {
		t.Fatal(err)
	}
	used := tr.VLANs()
	var vlans []int
	for v := 2000; len(vlans) < most; v++ {
		if !used[v] {
			vlans = append(vlans, v)
		}
	}
	inNB := func(want int) func() (bool, string) {
		return func() (bool, string) {
			out := s.NBCtl(t, "--bare", "--columns=name", "find", "Logical_Switch_Port", "parent_name="+vm.VIFID())
			got := len(strings.Fields(out))
			return got == want, fmt.Sprintf("%d ports under the VM's port in NB, want %d", got, want)
		}
	}
	base := len(tr.Subports)
	waitUntil(t, "NB as Neutron", inNB(base))

	reps := map[int]int{1: 8, 10: 4, 50: 2, 100: 2, 200: 1}
	var xs, ys []float64
	t.Logf("%6s %4s  %-34s %-34s %-34s", "batch", "reps", "add_subports (median [min-max])", "then until NB has them all", "remove_subports")
	for _, b := range []int{1, 10, 50, 100, 200} {
		var add, nb, rm []time.Duration
		for range reps[b] {
			subs := make([]neutron.Subport, b)
			ids := make([]string, b)
			for i := range subs {
				subs[i] = neutron.Subport{PortID: made[i].ID, VLAN: vlans[i]}
				ids[i] = made[i].ID
			}
			t0 := time.Now()
			if err := nc.AddSubports(ctx, trunk.ID, subs); err != nil {
				t.Fatal(err)
			}
			add = append(add, time.Since(t0))
			waitUntil(t, "NB has the batch", inNB(base+b))
			nb = append(nb, time.Since(t0)-add[len(add)-1])
			xs, ys = append(xs, float64(b)), append(ys, add[len(add)-1].Seconds())
			t0 = time.Now()
			if err := nc.RemoveSubports(ctx, trunk.ID, ids); err != nil {
				t.Fatal(err)
			}
			rm = append(rm, time.Since(t0))
			waitUntil(t, "NB without the batch", inNB(base))
		}
		t.Logf("%6d %4d  %-34s %-34s %-34s", b, reps[b], spread(add), spread(nb), spread(rm))
	}
	a, k := fitLine(xs, ys)
	t.Logf("add_subports fit over %d calls: %.0f ms + %.1f ms per subport", len(xs), a*1000, k*1000)
}

// logQuota logs the project's port quota, its limit and what is in use now, and returns
// the ports still free (-1 when unlimited or unknown).
func logQuota(t *testing.T, s *testutil.Stack, vm *testutil.VM, project string) int {
	t.Helper()
	q, err := quotas.GetDetail(testutil.Context(t), s.Network(t, "tenant-"+vm.Env["STACK_VM_TENANT"]), project).Extract()
	if err != nil {
		t.Logf("the project's quota: %v", err)
		return -1
	}
	t.Logf("the project's quota: ports limit %d, used %d, reserved %d; networks limit %d, used %d; subnets limit %d, used %d",
		q.Port.Limit, q.Port.Used, q.Port.Reserved, q.Network.Limit, q.Network.Used, q.Subnet.Limit, q.Subnet.Used)
	if q.Port.Limit < 0 {
		return -1
	}
	return q.Port.Limit - q.Port.Used - q.Port.Reserved
}

// spread is "median [min-max]" of the durations.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%s [%s-%s]", fmtMS(s[len(s)/2]), fmtMS(s[0]), fmtMS(s[len(s)-1]))
}

// pctOf is the p-th percentile (nearest rank) of the durations.
func pctOf(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := max((len(s)*p+99)/100, 1)
	return s[i-1]
}

// fitLine is the least-squares line y = a + k x.
func fitLine(xs, ys []float64) (a, k float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return sy / n, 0
	}
	k = (n*sxy - sx*sy) / d
	return (sy - k*sx) / n, k
}

// proc is what /proc says of a process: its CPU time so far and its resident memory.
type proc struct {
	cpu      time.Duration
	rss, hwm int64 // kB
}

func procOf(t *testing.T, pid int) proc {
	t.Helper()
	var p proc
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's name (which may hold spaces) start at its ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	p.cpu = time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmHWM:") {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			if f[0] == "VmRSS:" {
				p.rss = v
			} else {
				p.hwm = v
			}
		}
	}
	return p
}

// pidFile reads a daemon's pid file.
func pidFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}

// fileSize is a file's size in bytes (0 when it does not exist).
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// stackDaemons are the pids of the stack's shared daemons whose cost grows with ports.
func stackDaemons(t *testing.T, s *testutil.Stack, vm *testutil.VM) map[string]int {
	t.Helper()
	hv := s.Hypervisor(vm)
	hvDir := hv
	if hv == "hv1" {
		hvDir = "hv"
	}
	d := map[string]int{
		"ovn-controller (" + hv + ")": pidFile(t, filepath.Join(s.Dir, hvDir, "ovn-controller.pid")),
		vm.Name + " ovs-vswitchd":     pidFile(t, filepath.Join(s.Dir, vm.Name, "ovs", "ovs-vswitchd.pid")),
	}
	// Standalone OVN has one northd and one SB server; a clustered one, one of each per
	// member (the active northd is the one whose CPU moves).
	if _, err := os.Stat(filepath.Join(s.Dir, "ovn", "ovn-northd.pid")); err == nil {
		d["ovn-northd"] = pidFile(t, filepath.Join(s.Dir, "ovn", "ovn-northd.pid"))
		d["ovsdb-server (SB)"] = pidFile(t, filepath.Join(s.Dir, "ovn", "ovnsb_db.pid"))
		return d
	}
	members, _ := filepath.Glob(filepath.Join(s.Dir, "ovn", "northd*.pid"))
	if len(members) == 0 {
		t.Fatalf("no ovn-northd pid file under %s", filepath.Join(s.Dir, "ovn"))
	}
	for _, f := range members {
		k := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "northd"), ".pid")
		d["ovn-northd "+k] = pidFile(t, f)
		d["SB "+k] = pidFile(t, filepath.Join(s.Dir, "ovn", "sb"+k, "ovsdb-server.pid"))
	}
	return d
}

// scaleLevels are the pod counts TestScaleAgent measures at: 0, 50, 100, 200, 300, then
// 500, 750, 1000 and every further 500 up to OVN_DOCKER_E2E_SCALE_PODS (300 unless set).
func scaleLevels(t *testing.T) []int {
	top := 300
	if v := os.Getenv("OVN_DOCKER_E2E_SCALE_PODS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 50 || n > 2000 {
			t.Fatalf("OVN_DOCKER_E2E_SCALE_PODS=%q: want a number of pods from 50 to 2000", v)
		}
		top = n
	}
	var levels []int
	for _, l := range []int{0, 50, 100, 200, 300, 500, 750} {
		if l < top {
			levels = append(levels, l)
		}
	}
	for l := 1000; l < top; l += 500 {
		levels = append(levels, l)
	}
	return append(levels, top)
}

// TestScaleAgent: one VM's agent as its pods go 0 -> 50 -> 100 -> 200 -> 300 (further with
// OVN_DOCKER_E2E_SCALE_PODS, up to 1,000 and beyond), each
// from a pool of 25 (a pod's ADD at a time, the pool made up again before the next 25).
// At each level: the agent's resident memory, the state file's size and the time to read
// it and to write it back, the ports OVN holds, and three cold ADDs (no pool: Neutron
// makes the port) with the time from the interface's plumbing until OVN's DHCP answers
// it (the engine's ready phase) and the CPU the stack's daemons spent on each. Between
// the levels, each warm ADD is timed (p50, p99). At the end every pod is deleted at
// concurrency 10 (timed) and nothing may be left.
func TestScaleAgent(t *testing.T) {
	scaleOnly(t)
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	t.Cleanup(func() { assertClean(t, s, vm) })
	ls := uniq("LSSCALE")
	levels := scaleLevels(t)
	top := levels[len(levels)-1]
	// Room for every pod, the pool and the cold ADDs: a /21 holds 2,043 ports.
	mustOVNDocker(t, vm, "--standalone", "create", "network", ls, "--subnet", "10.78.0.0/21")
	t.Cleanup(func() { ovnDocker(t, vm, nil, "--standalone", "delete", "network", ls) })
	d := startPlugin(t, vm)
	t.Cleanup(func() {
		d.stop(t)
		mustOVNDocker(t, vm, "--standalone", "gc", "--drain-pools")
	})
	t.Cleanup(func() { cleanCNIVM(t, vm) })
	agentPID := d.cmd.Process.Pid
	stateDir := vm.Env["OVN_DOCKER_STATE_DIR"]
	metricsSock := filepath.Join(stateDir, "metrics.sock")
	network := tenantNetworkOf(t, s, vm, ls)
	const poolSize, colds = 25, 3
	// The run takes an hour at 1,000: refuse at once if the project cannot hold it.
	if free := logQuota(t, s, vm, network.ProjectID); free >= 0 && free < top+poolSize+colds*len(levels)+10 {
		t.Fatalf("the project's port quota leaves %d ports, and %d pods need about %d: raise it (openstack quota set --ports N %s)",
			free, top, top+poolSize+colds*len(levels)+10, network.ProjectID)
	}
	daemons := stackDaemons(t, s, vm)

	warm := newCNINet(t, vm, ls, map[string]any{"pool": map[string]int{"min": poolSize, "max": poolSize}})
	// An allowed address makes a port of its own (no pool's port fits it): the cold path.
	cold := newCNINet(t, vm, ls, map[string]any{"allowedAddresses": []string{"192.0.2.1"}})
	// The first ADD declares the pool; its pod goes again, so that the levels count the
	// pool's own pods only.
	first := warm.addPod(t)
	if err := warm.lib.DelNetworkList(testutil.Context(t), warm.list, first.rt); err != nil {
		t.Fatal(err)
	}
	var pods []*pod
	var podNet []*cniNet
	// ready is the engine's ready phase so far (plumbed until OVN answers): its sum and count.
	ready := func() (sum, n float64) {
		ss, err := metrics.Scrape(testutil.Context(t), metricsSock)
		if err != nil {
			t.Fatal(err)
		}
		phase := map[string]string{"phase": "ready"}
		return ss.Sum("ovn_docker_attach_phase_seconds_sum", phase), ss.Sum("ovn_docker_attach_phase_seconds_count", phase)
	}
	// idle: the pool full and no OpenStack request of the agent in flight.
	idle := func() time.Duration {
		t0 := time.Now()
		readyIn(t, vm, poolSize)
		waitUntil(t, "the agent idle", func() (bool, string) {
			ss, err := metrics.Scrape(testutil.Context(t), metricsSock)
			if err != nil {
				return false, err.Error()
			}
			n := ss.Sum("ovn_docker_openstack_requests_in_flight", nil)
			return n == 0, fmt.Sprintf("%v requests in flight", n)
		})
		return time.Since(t0)
	}
	swCount := func() (lsp, sb int) {
		out := s.NBCtl(t, "--bare", "--columns=ports", "find", "Logical_Switch", "name=neutron-"+network.ID)
		lsp = len(strings.Fields(out))
		out = testutil.MustRun(t, "ovn-sbctl", "--db="+s.Env["STACK_SB"], "--bare", "--columns=logical_port", "list", "Port_Binding")
		return lsp, len(strings.Fields(out))
	}
	var warmTook []time.Duration
	t.Logf("%5s %9s %9s %10s %9s %9s %6s %6s  %-30s %-22s %s", "pods", "agentRSS", "agentCPU", "state", "load", "write",
		"LSPs", "SB PBs", "cold ADD (median [min-max])", "of it DHCP (ready)", "daemons' CPU per cold ADD")
	for li, level := range levels {
		from, rs0, rn0 := len(warmTook), 0.0, 0.0
		var refills []time.Duration
		for len(pods) < level {
			d := idle()
			if len(warmTook) > from {
				refills = append(refills, d)
			} else {
				rs0, rn0 = ready()
			}
			for k := min(poolSize, level-len(pods)); k > 0; k-- {
				p := newPodNS(t)
				warmTook = append(warmTook, warm.add(t, p))
				pods, podNet = append(pods, p), append(podNet, warm)
			}
		}
		d := idle()
		if li > 0 {
			refills = append(refills, d)
			rs, rn := ready()
			ds := warmTook[from:]
			t.Logf("warm ADD, pods -> %d: n %d, p50 %s, p99 %s, max %s; the pool made up again in %s a round (%d rounds of <= %d); "+
				"its %v ports' ready phase (DHCP) mean %s", level, len(ds), fmtMS(pctOf(ds, 50)), fmtMS(pctOf(ds, 99)),
				fmtMS(pctOf(ds, 100)), spread(refills), len(refills), poolSize, rn-rn0,
				fmtMS(time.Duration((rs-rs0)/max(rn-rn0, 1)*float64(time.Second))))
		}
		ag := procOf(t, agentPID)
		load, write := stateCost(t, stateDir)
		lsp, sb := swCount()
		var took, dhcp []time.Duration
		before := map[string]proc{}
		for name, pid := range daemons {
			before[name] = procOf(t, pid)
		}
		for range colds {
			r0, _ := ready()
			p := newPodNS(t)
			took = append(took, cold.add(t, p))
			r1, _ := ready()
			dhcp = append(dhcp, time.Duration((r1-r0)*float64(time.Second)))
			pods, podNet = append(pods, p), append(podNet, cold)
		}
		var per []string
		for _, name := range slices.Sorted(maps.Keys(daemons)) {
			per = append(per, fmt.Sprintf("%s %s", name, fmtMS((procOf(t, daemons[name]).cpu-before[name].cpu)/colds)))
		}
		t.Logf("%5d %7dkB %9s %9dB %9s %9s %6d %6d  %-30s %-22s %s", level, ag.rss, fmtMS(ag.cpu), fileSize(filepath.Join(stateDir, "state.json")),
			fmtMS(load), fmtMS(write), lsp, sb, spread(took), spread(dhcp), strings.Join(per, ", "))
	}
	for name, pid := range daemons {
		p := procOf(t, pid)
		t.Logf("%s: RSS %d kB, peak %d kB", name, p.rss, p.hwm)
	}
	ag := procOf(t, agentPID)
	t.Logf("agent at %d pods: RSS %d kB, peak %d kB", len(pods), ag.rss, ag.hwm)

	// Every pod deleted, 10 at a time.
	took := delPods(t, pods, podNet)
	t.Logf("DEL of %d pods at concurrency 10: %s (%.1f/s)", len(pods), took.Round(time.Millisecond),
		float64(len(pods))/took.Seconds())
}

// tenantNetworkOf is the network called name as the VM's tenant sees it in Neutron.
func tenantNetworkOf(t *testing.T, s *testutil.Stack, vm *testutil.VM, name string) *neutron.Network {
	t.Helper()
	pc, eo := s.Provider(t, "tenant-"+vm.Env["STACK_VM_TENANT"])
	nc, err := neutron.New(pc, eo)
	if err != nil {
		t.Fatal(err)
	}
	network, err := nc.FindNetwork(testutil.Context(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return network
}

// delPods deletes every pod through its network's CNI DEL, 10 at a time, and returns how
// long that took; a failed DEL is the test's error.
func delPods(t *testing.T, pods []*pod, nets []*cniNet) time.Duration {
	t.Helper()
	t0 := time.Now()
	next := make(chan int)
	errs := make(chan error, len(pods))
	for range 10 {
		go func() {
			for i := range next {
				errs <- nets[i].lib.DelNetworkList(testutil.Context(t), nets[i].list, pods[i].rt)
			}
		}()
	}
	for i := range pods {
		next <- i
	}
	close(next)
	for range pods {
		if err := <-errs; err != nil {
			t.Errorf("DEL: %v", err)
		}
	}
	return time.Since(t0)
}

// stateCost is the median time, over 5, to read and decode a copy of the VM's state file,
// and to write it back (encode, write, fsync, rename): what every change of the state
// costs the agent at this size.
func stateCost(t *testing.T, stateDir string) (load, write time.Duration) {
	t.Helper()
	b, rerr := os.ReadFile(filepath.Join(stateDir, "state.json"))
	if rerr != nil && !os.IsNotExist(rerr) {
		t.Fatal(rerr)
	}
	// Next to the state file, on its file system: the fsync is part of the cost.
	dir, err := os.MkdirTemp(filepath.Dir(stateDir), "scale-state-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if rerr == nil {
		if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t)
	var loads, writes []time.Duration
	for range 5 {
		t0 := time.Now()
		if err := st.View(ctx, func(*state.State) error { return nil }); err != nil {
			t.Fatal(err)
		}
		loads = append(loads, time.Since(t0))
		t0 = time.Now()
		if err := st.Update(ctx, func(*state.State) error { return nil }); err != nil {
			t.Fatal(err)
		}
		writes = append(writes, time.Since(t0))
	}
	return pctOf(loads, 50), pctOf(writes, 50) - pctOf(loads, 50)
}
