//go:build integration

package e2e

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/metrics"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestScaleNetwork: one network that VMs join one at a time (all the VMs the test is
// given, up to 7, taken so that consecutive VMs are on different hypervisors), each with
// K pods (OVN_DOCKER_E2E_SCALE_PER_VM, 10 by default) given their interfaces cold by
// ovn-docker-cni through the VM's agent. After each VM joins, one row: the network's
// ports and the chassis it spans, three cold ADDs in the newest VM with OVN's DHCP time
// (the ready phase), the CPU the stack's OVN daemons spent per new port, the OpenFlow
// flows of each hypervisor's br-int and the network's logical flows, the copies of one
// ARP broadcast on each VM's NIC and on the underlay (counted, and asserted), and the
// first ping (ARP cold) from the first VM to the newest.
func TestScaleNetwork(t *testing.T) {
	scaleOnly(t)
	s := testutil.LoadStack(t)
	perVM := 10
	if v := os.Getenv("OVN_DOCKER_E2E_SCALE_PER_VM"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4 {
			t.Fatalf("OVN_DOCKER_E2E_SCALE_PER_VM=%q: want a number of pods of at least 4", v)
		}
		perVM = n
	}
	vms := alternateHypervisors(s, s.TenantVMs(t, min(7, tenantVMCount(s))))
	t.Cleanup(func() {
		for _, vm := range vms {
			assertClean(t, s, vm)
		}
	})
	first := vms[0]
	ls := uniq("LSNET")
	mustOVNDocker(t, first, "--standalone", "create", "network", ls, "--subnet", "10.79.0.0/22")
	t.Cleanup(func() { ovnDocker(t, first, nil, "--standalone", "delete", "network", ls) })
	network := tenantNetworkOf(t, s, first, ls)
	logQuota(t, s, first, network.ProjectID)
	netClient := s.Network(t, "tenant-"+first.Env["STACK_VM_TENANT"])
	dp := strings.TrimSpace(testutil.MustRun(t, "ovn-sbctl", "--db="+s.Env["STACK_SB"], "--bare", "--columns=_uuid",
		"find", "Datapath_Binding", "external_ids:name=neutron-"+network.ID))
	if dp == "" {
		t.Fatalf("no SB datapath for network %s", network.ID)
	}
	hvs := hypervisorsOf(s)
	encap := map[string]netip.Addr{}
	chassisHV := map[string]string{}
	for _, hv := range hvs {
		db := "--db=unix:" + filepath.Join(hvDir(s, hv), "db.sock")
		encap[hv] = netip.MustParseAddr(strings.Trim(testutil.MustRun(t, "ovs-vsctl", db, "get", "open", ".", "external_ids:ovn-encap-ip"), "\"\n"))
		chassisHV[strings.Trim(testutil.MustRun(t, "ovs-vsctl", db, "get", "open", ".", "external_ids:system-id"), "\"\n")] = hv
	}
	daemons := ovnDaemons(t, s, hvs)

	// chassis is the set of hypervisors the network's ports are bound on.
	chassis := func() []string {
		out := testutil.MustRun(t, "ovn-sbctl", "--db="+s.Env["STACK_SB"], "--bare", "--columns=chassis", "find", "Port_Binding", "datapath="+dp)
		set := map[string]bool{}
		for _, uuid := range slices.Compact(slices.Sorted(slices.Values(strings.Fields(out)))) {
			name := strings.TrimSpace(testutil.MustRun(t, "ovn-sbctl", "--db="+s.Env["STACK_SB"], "--bare", "--columns=name", "list", "Chassis", uuid))
			set[chassisHV[name]] = true
		}
		return slices.Sorted(maps.Keys(set))
	}

	var in []*netVM
	var allPods []*pod
	var allNets []*cniNet
	t.Logf("%3s %-8s %-3s %5s %4s %6s  %-30s %-20s %-46s %-17s %-30s %s", "VMs", "newest", "hvs", "ports", "LSPs", "lflows",
		"cold ADD (median [min-max])", "of it DHCP (ready)", "CPU per new port (ovn-controller hv1/hv2/..)", "br-int flows", "ARP copies on VM NICs (Geneve)", "first ping")
	for _, vm := range vms {
		j := &netVM{vm: vm, hv: s.Hypervisor(vm)}
		d := startPlugin(t, vm)
		t.Cleanup(func() {
			d.stop(t)
			mustOVNDocker(t, vm, "--standalone", "gc", "--drain-pools")
		})
		t.Cleanup(func() { cleanCNIVM(t, vm) })
		metricsSock := filepath.Join(vm.Env["OVN_DOCKER_STATE_DIR"], "metrics.sock")
		ready := func() float64 {
			ss, err := metrics.Scrape(testutil.Context(t), metricsSock)
			if err != nil {
				t.Fatal(err)
			}
			return ss.Sum("ovn_docker_attach_phase_seconds_sum", map[string]string{"phase": "ready"})
		}
		// An allowed address makes a port of its own: every ADD is cold, Neutron makes the port.
		cold := newCNINet(t, vm, ls, map[string]any{"allowedAddresses": []string{"192.0.2.1"}})
		before := map[string]proc{}
		for name, pid := range daemons {
			before[name] = procOf(t, pid)
		}
		const timed = 3
		for len(j.pods) < perVM-timed {
			j.pods = append(j.pods, cold.addPod(t))
		}
		var took, dhcp []time.Duration
		for range timed {
			r0 := ready()
			p := newPodNS(t)
			took = append(took, cold.add(t, p))
			dhcp = append(dhcp, time.Duration((ready()-r0)*float64(time.Second)))
			j.pods = append(j.pods, p)
		}
		// Per new port: the northds together (one is active), the SB cluster's members
		// together (each applies every change), each hypervisor's ovn-controller.
		spent := map[string]time.Duration{}
		for name, pid := range daemons {
			group := name
			for _, g := range []string{"northd", "sb"} {
				if strings.HasPrefix(name, g) {
					group = g
				}
			}
			spent[group] += (procOf(t, pid).cpu - before[name].cpu) / time.Duration(perVM)
		}
		cpu := []string{"northd " + fmtMS(spent["northd"]), "SB " + fmtMS(spent["sb"])}
		var ctl []string
		for _, hv := range hvs {
			ctl = append(ctl, fmtMS(spent["ovn-controller "+hv]))
		}
		cpu = append(cpu, "ctl "+strings.Join(ctl, "/"))
		for range j.pods {
			allNets = append(allNets, cold)
		}
		allPods = append(allPods, j.pods...)
		in = append(in, j)

		// The network's ports as Neutron and OVN hold them: OVN has them all once Neutron
		// answered each ADD, but the chassis binds them when its ovn-controller gets there.
		pages, err := ports.List(netClient, ports.ListOpts{NetworkID: network.ID}).AllPages(testutil.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		nports, err := ports.ExtractPorts(pages)
		if err != nil {
			t.Fatal(err)
		}
		lsps := len(strings.Fields(s.NBCtl(t, "--bare", "--columns=ports", "find", "Logical_Switch", "name=neutron-"+network.ID)))
		want := map[string]bool{}
		for _, jj := range in {
			want[jj.hv] = true
		}
		var spans []string
		waitUntil(t, "the network bound on its VMs' chassis", func() (bool, string) {
			spans = chassis()
			return slices.Equal(spans, slices.Sorted(maps.Keys(want))), fmt.Sprintf("bound on %v", spans)
		})
		lflows := strings.Count(testutil.MustRun(t, "ovn-sbctl", "--db="+s.Env["STACK_SB"], "lflow-list", dp), "  table=")
		var flows []string
		for _, hv := range hvs {
			flows = append(flows, strconv.Itoa(brIntFlows(t, s, hv)))
		}

		copies := broadcastFanOut(t, in, spans, encap)

		// The first ping from the first VM to the newest pod (ARP cold on both sides); the
		// next two only tell a lost first packet from a cut path.
		from, to := in[0].pods[1], j.pods[len(j.pods)-1]
		out, err := exec.Command("ip", "netns", "exec", from.ns, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "10", to.ip()).CombinedOutput()
		firstPing := "first lost"
		if m := regexp.MustCompile(`icmp_seq=1 .*time=([0-9.]+) ms`).FindSubmatch(out); m != nil {
			firstPing = string(m[1]) + " ms"
		}
		if err != nil && !strings.Contains(string(out), "time=") {
			t.Errorf("%s -> %s: no answer to ping: %v\n%s", from.ns, to.ns, err, out)
		}
		t.Logf("%3d %-8s %-3d %5d %4d %6d  %-30s %-20s %-46s %-17s %-30s %s", len(in), vm.Name+"@"+j.hv, len(spans), len(nports), lsps, lflows,
			spread(took), spread(dhcp), strings.Join(cpu, ", "), strings.Join(flows, "/"), copies, firstPing)
	}
	t.Logf("the ARP request for an unknown address: its copies on each VM's NIC (Geneve copies from the sender's chassis); " +
		"one for a known address: answered by the sender's chassis, no copy on any NIC or on the underlay, at every row")
	for name, pid := range daemons {
		p := procOf(t, pid)
		t.Logf("%s: RSS %d kB, peak %d kB", name, p.rss, p.hwm)
	}

	// Every pod deleted, 10 at a time (their own cleanups then find nothing left).
	took := delPods(t, allPods, allNets)
	t.Logf("DEL of %d pods in %d VMs at concurrency 10: %s (%.1f/s)", len(allPods), len(in), took.Round(time.Millisecond),
		float64(len(allPods))/took.Seconds())
}

// netVM is a VM on the network of TestScaleNetwork: its hypervisor and its pods there.
type netVM struct {
	vm   *testutil.VM
	hv   string
	pods []*pod
}

// broadcastFanOut sends one ARP request for an address no port has from the first VM's
// first pod and counts its copies where they arrive: on each VM's NIC (one per pod of the
// network in that VM, each on its own VLAN; the sender's own excepted) and on each
// chassis' uplink to the underlay (the sender's chassis sends one Geneve copy to each
// other chassis the network spans, no other chassis sends one). An ARP request for a
// known address, sent with it, must go nowhere: OVN answers it on the sender's chassis.
// A copy fewer than expected is a frame this loaded datapath lost (OVN's flow swaps drop
// one now and then): the probe is made again, up to 3 times; a copy more never passes.
// It returns the copies per VM NIC and the Geneve copies.
func broadcastFanOut(t *testing.T, in []*netVM, spans []string, encap map[string]netip.Addr) string {
	t.Helper()
	for try := 1; ; try++ {
		counts, problems, short := probeBroadcast(t, in, spans, encap)
		if len(problems) == 0 {
			if try > 1 {
				counts += fmt.Sprintf(" [try %d]", try)
			}
			return counts
		}
		if !short || try == 3 {
			for _, p := range problems {
				t.Error(p)
			}
			return counts
		}
		t.Logf("broadcast probe %d: %s; again", try, strings.Join(problems, "; "))
	}
}

// probeBroadcast is one probe of broadcastFanOut: its counts, what differs from the
// expectation, and whether only copies were missing.
func probeBroadcast(t *testing.T, in []*netVM, spans []string, encap map[string]netip.Addr) (string, []string, bool) {
	t.Helper()
	sender := in[0].pods[0]
	srcMAC, _ := net.ParseMAC(sender.mac())
	srcIP := netip.MustParseAddr(sender.ip())
	// Neutron spreads its addresses over the whole subnet: the unused one is looked for.
	taken := map[string]bool{}
	for _, j := range in {
		for _, p := range j.pods {
			taken[p.ip()] = true
		}
	}
	unused := netip.MustParseAddr("10.79.3.254")
	for taken[unused.String()] {
		unused = unused.Prev()
	}
	tx := openRaw(t, "/run/netns/"+sender.ns, "eth0", 0)
	nics := make([]*vlanCapture, len(in))
	for i, j := range in {
		nics[i] = listenVM(t, j.vm, j.vm.Env["OVN_DOCKER_UPLINK"])
	}
	uplinks := map[string]*vlanCapture{}
	if _, err := os.Stat("/run/netns/underlay"); err == nil { // a stack of one hypervisor has none
		for _, hv := range spans {
			// Seen from the underlay's side, what comes in on ul-hvN is what hvN sent.
			uplinks[hv] = listenNS(t, "/run/netns/underlay", "ul-"+hv)
		}
	}
	senderHV := in[0].hv

	m := marker(t, "broadcast")
	tx.send(t, ether(broadcast, srcMAC, 0x0806, append(arpPacket(1, srcMAC, srcIP, nil, unused), m...)))
	// An ARP request for an address OVN knows (the newest pod's) is answered by the
	// sender's own chassis: no copy goes anywhere, only the answer back to the sender.
	newest := in[len(in)-1].pods[len(in[len(in)-1].pods)-1]
	known := marker(t, "known")
	tx.send(t, ether(broadcast, srcMAC, 0x0806, append(arpPacket(1, srcMAC, srcIP, nil, netip.MustParseAddr(newest.ip())), known...)))

	// Fences: an ICMP echo request to one pod of each VM (not the sender), sent after the
	// broadcast on its path, seen on that VM's NIC and on the sender's chassis' uplink, and
	// the pod's reply on its own chassis' uplink. A fence this datapath lost is sent again
	// (every 250 ms); what ends the captures is that every fence arrived.
	type need struct {
		c    *vlanCapture
		m    []byte
		what string
		send []byte
	}
	var needs []need
	for i, j := range in {
		to := j.pods[len(j.pods)-1]
		if to == sender {
			to = j.pods[len(j.pods)-2]
		}
		dst, _ := net.ParseMAC(to.mac())
		fm := marker(t, fmt.Sprintf("fence%d", i))
		f := ether(dst, srcMAC, 0x0800, icmpEcho(srcIP, netip.MustParseAddr(to.ip()), uint16(i+1), fm))
		needs = append(needs, need{nics[i], fm, fmt.Sprintf("%s's NIC: the fence to %s", j.vm.Name, to.ns), f})
		if j.hv != senderHV {
			needs = append(needs, need{uplinks[senderHV], fm, fmt.Sprintf("%s's uplink: the fence to %s", senderHV, to.ns), f},
				need{uplinks[j.hv], fm, fmt.Sprintf("%s's uplink: %s's reply to the fence", j.hv, to.ns), f})
		}
	}
	ctx := testutil.Context(t)
	for {
		var unmet []string
		resend := map[string][]byte{}
		for _, n := range needs {
			if len(n.c.seen(withMarker(n.m))) == 0 {
				unmet = append(unmet, n.what)
				resend[string(n.m)] = n.send
			}
		}
		if len(unmet) == 0 {
			break
		}
		for _, f := range resend {
			tx.send(t, f)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the fences did not all arrive: %s", strings.Join(unmet, "; "))
		case <-time.After(250 * time.Millisecond):
		}
	}
	for _, c := range nics {
		c.stop()
	}
	for _, c := range uplinks {
		c.stop()
	}

	var counts, problems []string
	short := true
	for i, j := range in {
		vm := j.vm
		want := len(j.pods)
		if i == 0 {
			want-- // not back to the sender
		}
		got := nics[i].seen(withMarker(m))
		vlans := map[int]bool{}
		for _, f := range got {
			vlans[f.vlan] = true
		}
		if len(got) != want || len(vlans) != len(got) || vlans[-1] {
			problems = append(problems, fmt.Sprintf("%s's NIC received %d copies of the broadcast on %d VLANs %v, want %d, one on each of its pods' VLANs",
				vm.Name, len(got), len(vlans), slices.Sorted(maps.Keys(vlans)), want))
			short = short && len(got) < want && len(vlans) == len(got) && !vlans[-1]
		}
		counts = append(counts, strconv.Itoa(len(got)))
		got = nics[i].seen(withMarker(known))
		want = 0
		if i == 0 {
			want = 1
		}
		for _, tf := range got {
			f, _ := parseFrame(tf.raw)
			if _, spa, ok := f.arpSender(); !ok || f.payload[7] != 2 || !slices.Equal(f.dst, srcMAC) || spa.String() != newest.ip() {
				problems = append(problems, fmt.Sprintf("%s's NIC received %s, want only OVN's ARP answer for %s to %s", vm.Name, f, newest.ip(), sender.ns))
				short = false
			}
		}
		if len(got) != want {
			problems = append(problems, fmt.Sprintf("%s's NIC received %d frames of the ARP request for a known address, want %d (OVN's answer to the sender)",
				vm.Name, len(got), want))
			short = short && len(got) < want
		}
	}
	for hv := range uplinks {
		got := uplinks[hv].seen(withMarker(m))
		var to []string
		for _, f := range got {
			if etherTypeOf(f.raw) == 0x0800 && len(f.raw) >= 34 {
				to = append(to, netip.AddrFrom4([4]byte(f.raw[30:34])).String())
			}
		}
		var want []string
		if hv == senderHV {
			for _, o := range spans {
				if o != hv {
					want = append(want, encap[o].String())
				}
			}
		}
		slices.Sort(to)
		if !slices.Equal(to, want) {
			problems = append(problems, fmt.Sprintf("%s sent %d Geneve copies of the broadcast to %v, want one to each other chassis of the network %v",
				hv, len(got), to, want))
			// Missing copies only: each one it sent was to a chassis it should go to, once.
			short = short && len(to) < len(want) && len(slices.Compact(slices.Clone(to))) == len(to) && !slices.ContainsFunc(to, func(a string) bool { return !slices.Contains(want, a) })
		}
		if n := len(uplinks[hv].seen(withMarker(known))); n != 0 {
			problems = append(problems, fmt.Sprintf("%s sent %d Geneve copies of the ARP request for a known address, want none", hv, n))
			short = false
		}
	}
	return fmt.Sprintf("%s (%d)", strings.Join(counts, "+"), len(spans)-1), problems, short
}

// etherTypeOf is an untagged frame's EtherType (the underlay carries no VLANs).
func etherTypeOf(raw []byte) uint16 {
	if len(raw) < 14 {
		return 0
	}
	return uint16(raw[12])<<8 | uint16(raw[13])
}

// tenantVMCount is how many VMs TenantVMs may lease: OVN_DOCKER_E2E_VMS's, or tenant-a's.
func tenantVMCount(s *testutil.Stack) int {
	if names := os.Getenv("OVN_DOCKER_E2E_VMS"); names != "" {
		return len(strings.Split(names, ","))
	}
	n := 0
	for _, vm := range s.VMs {
		if vm.Env["STACK_VM_TENANT"] == "a" {
			n++
		}
	}
	return n
}

// alternateHypervisors orders the VMs so that consecutive ones run on different
// hypervisors as long as there are several left: one from each hypervisor in turn.
func alternateHypervisors(s *testutil.Stack, vms []*testutil.VM) []*testutil.VM {
	by := map[string][]*testutil.VM{}
	for _, vm := range vms {
		by[s.Hypervisor(vm)] = append(by[s.Hypervisor(vm)], vm)
	}
	for _, l := range by {
		slices.SortFunc(l, func(a, b *testutil.VM) int { return strings.Compare(a.Name, b.Name) })
	}
	var out []*testutil.VM
	for len(out) < len(vms) {
		for _, hv := range slices.Sorted(maps.Keys(by)) {
			if len(by[hv]) > 0 {
				out = append(out, by[hv][0])
				by[hv] = by[hv][1:]
			}
		}
	}
	return out
}

// hypervisorsOf is the stack's hypervisors, hv1 to hvN.
func hypervisorsOf(s *testutil.Stack) []string {
	n, _ := strconv.Atoi(s.Env["STACK_HYPERVISORS"])
	var hvs []string
	for i := 1; i <= max(n, 1); i++ {
		hvs = append(hvs, fmt.Sprintf("hv%d", i))
	}
	return hvs
}

// ovnDaemons are the pids of OVN's shared daemons: each northd (one is active), each SB
// database server (the cluster's members) and each hypervisor's ovn-controller.
func ovnDaemons(t *testing.T, s *testutil.Stack, hvs []string) map[string]int {
	t.Helper()
	d := map[string]int{}
	// One member runs as ovn-ctl starts it; a cluster's members have folders of their own.
	if members, _ := strconv.Atoi(s.Env["STACK_OVN_MEMBERS"]); members > 1 {
		for i := 1; i <= members; i++ {
			d[fmt.Sprintf("northd%d", i)] = pidFile(t, filepath.Join(s.Dir, "ovn", fmt.Sprintf("northd%d.pid", i)))
			d[fmt.Sprintf("sb%d", i)] = pidFile(t, filepath.Join(s.Dir, "ovn", fmt.Sprintf("sb%d", i), "ovsdb-server.pid"))
		}
	} else {
		d["northd"] = pidFile(t, filepath.Join(s.Dir, "ovn", "ovn-northd.pid"))
		d["sb"] = pidFile(t, filepath.Join(s.Dir, "ovn", "ovnsb_db.pid"))
	}
	for _, hv := range hvs {
		d["ovn-controller "+hv] = pidFile(t, filepath.Join(hvDir(s, hv), "ovn-controller.pid"))
	}
	return d
}

// brIntFlows is the number of OpenFlow flows on the hypervisor's br-int.
func brIntFlows(t *testing.T, s *testutil.Stack, hv string) int {
	t.Helper()
	out := testutil.MustRun(t, "ovs-ofctl", "dump-aggregate", "unix:"+filepath.Join(hvDir(s, hv), "br-int.mgmt"))
	m := regexp.MustCompile(`flow_count=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: no flow count in:\n%s", hv, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
