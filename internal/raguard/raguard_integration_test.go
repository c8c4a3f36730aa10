//go:build integration

package raguard

import (
	"context"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestGuardOnRealBridge installs the guard on a real bridge with an uplink and a
// container-like port, reads it back, and traces packets through it: a router
// advertisement (also one behind a hop-by-hop header), a redirect and DHCP server
// replies are dropped from the container's port and forwarded (NORMAL) from the uplink
// and the bridge's own port; other ICMPv6 (a router solicitation) passes.
func TestGuardOnRealBridge(t *testing.T) {
	o := testutil.StartOVS(t, "")
	o.AddBridge(t, "brg")
	o.Vsctl(t, "add-port", "brg", "up0", "--", "set", "Interface", "up0", "type=internal")
	o.Vsctl(t, "add-port", "brg", "c0", "tag=10", "--", "set", "Interface", "c0", "type=internal")
	o.Vsctl(t, "set", "Bridge", "brg", "protocols=OpenFlow10") // as a VM's admin may have left it
	ctx := testutil.Context(t)
	sw, err := ovs.Dial(ctx, o.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	g := &Guard{Switch: sw, OVSDB: o.Endpoint, Bridge: "brg", Uplink: "up0"}
	n, err := g.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3*len(Kinds) {
		t.Errorf("first Ensure sent %d flow mods, want %d", n, 3*len(Kinds))
	}
	if p := o.Vsctl(t, "get", "Bridge", "brg", "protocols"); p != "[OpenFlow10, OpenFlow13]" {
		t.Errorf("protocols %s, want OpenFlow10 kept and OpenFlow13 added", p)
	}
	t0 := time.Now()
	if n, err := g.Ensure(ctx); err != nil || n != 0 {
		t.Errorf("second Ensure: %d mods, %v; want none", n, err)
	}
	t.Logf("Ensure with the guard in place: %v", time.Since(t0))
	sock := filepath.Join(o.Dir, "brg.mgmt")
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", "unix:"+sock).CombinedOutput()
	if err != nil {
		t.Fatalf("dump-flows: %v: %s", err, out)
	}
	dump := string(out)
	t.Logf("flows:\n%s", dump)
	upPort := o.Vsctl(t, "get", "Interface", "up0", "ofport")
	for _, want := range []string{
		"cookie=0x6f766e6472616701, priority=60001,icmp6,in_port=" + upPort + ",icmp_type=134 actions=NORMAL",
		"cookie=0x6f766e6472616701, priority=60000,icmp6,icmp_type=134 actions=drop",
		"cookie=0x6f766e6472616701, priority=60000,icmp6,icmp_type=137 actions=drop",
		"cookie=0x6f766e6472616701, priority=60000,udp,tp_src=67 actions=drop",
		"cookie=0x6f766e6472616701, priority=60000,udp6,tp_src=547 actions=drop",
		"cookie=0x6f766e6472616701, priority=60001,icmp6,in_port=LOCAL,icmp_type=134 actions=NORMAL",
		" priority=0 actions=NORMAL", // the bridge's own, untouched
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("no %q (uplink is port %s)", want, upPort)
		}
	}
	if got := strings.Count(dump, "cookie=0x6f766e6472616701"); got != 3*len(Kinds) {
		t.Errorf("%d guard flows, want %d", got, 3*len(Kinds))
	}

	// Traces: a packet given as bytes, parsed by ovs-vswitchd itself.
	const (
		eth6 = "333300000001" + "02000000c001" + "86dd"
		eth4 = "ffffffffffff" + "02000000c001" + "0800"
		ll   = "fe800000000000000000000000c001" + "00"
		all  = "ff020000000000000000000000000001"
		// RA: type 134, code 0, checksum (unchecked here), hop limit, flags, lifetime,
		// reachable, retrans.
		ra = "8600" + "0000" + "40" + "00" + "0708" + "00000000" + "00000000"
	)
	ip6 := func(next, payload string) string {
		return "60000000" + hex.EncodeToString([]byte{byte(len(payload) / 2 >> 8), byte(len(payload) / 2)}) + next + "ff" + ll + all + payload
	}
	udp := func(src, dst string) string { return src + dst + "000c" + "0000" + "01020304" }
	frames := map[string]string{
		"router advertisement":          eth6 + ip6("3a", ra),
		"RA behind a hop-by-hop header": eth6 + ip6("00", "3a00"+"01040000"+"0000"+ra),
		"redirect":                      eth6 + ip6("3a", "8900"+"0000"+"00000000"+ll[:32]+all),
		"DHCPv6 reply":                  eth6 + ip6("11", udp("0223", "0222")),
		"DHCPv4 offer": eth4 + "45000020" + "00000000" + "4011" + "0000" + "0a000001" + "ffffffff" +
			udp("0043", "0044"),
	}
	trace := func(inPort, frame string) string {
		return o.Appctl(t, "ofproto/trace", "brg", "in_port="+inPort, frame)
	}
	for name, f := range frames {
		if got := trace("c0", f); !strings.Contains(got, "Datapath actions: drop") || !strings.Contains(got, "cookie 0x6f766e6472616701") {
			t.Errorf("%s from the container's port is not dropped by the guard:\n%s", name, got)
		}
		for _, in := range []string{"up0", "LOCAL"} {
			if got := trace(in, f); strings.Contains(got, "Datapath actions: drop") || !strings.Contains(got, "NORMAL") {
				t.Errorf("%s from %s is not forwarded:\n%s", name, in, got)
			}
		}
	}
	rs := eth6 + ip6("3a", "8500"+"0000"+"00000000")
	if got := trace("c0", rs); strings.Contains(got, "Datapath actions: drop") || strings.Contains(got, "0x6f766e6472616701") {
		t.Errorf("a router solicitation from the container's port is touched by the guard:\n%s", got)
	}

	// Gone (an ovs-vswitchd restart loses flows): Check says so, Ensure puts them back.
	if out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "del-flows", "unix:"+sock, "cookie=0x6f766e6472616701/-1").CombinedOutput(); err != nil {
		t.Fatalf("del-flows: %v: %s", err, out)
	}
	missing, extra, err := g.Check(ctx)
	if err != nil || len(missing) != 3*len(Kinds) || len(extra) != 0 {
		t.Fatalf("Check after del-flows: %d missing, %d extra, %v", len(missing), len(extra), err)
	}
	if n, err := g.Ensure(ctx); err != nil || n != 3*len(Kinds) {
		t.Fatalf("Ensure after del-flows: %d, %v", n, err)
	}
	// The uplink comes back with another port number: its old flows go.
	o.Vsctl(t, "del-port", "brg", "up0")
	o.Vsctl(t, "add-port", "brg", "up0", "--", "set", "Interface", "up0", "type=internal", "ofport_request=40")
	if n, err := g.Ensure(ctx); err != nil || n != 2*len(Kinds) {
		t.Fatalf("Ensure after the uplink moved: %d mods, %v; want %d", n, err, 2*len(Kinds))
	}
	if missing, extra, err := g.Check(ctx); err != nil || len(missing)+len(extra) != 0 {
		t.Fatalf("Check after the uplink moved: %v missing, %v extra, %v", missing, extra, err)
	}
}

// TestWatchPutsGuardBack: the agent's watch puts the guard back, with no attach, when
// ovs-vswitchd restarts (flows lost) and when the uplink is re-added with another port
// number (its flows move to it). Each time, the watch's report is the event waited on.
func TestWatchPutsGuardBack(t *testing.T) {
	o := testutil.StartOVS(t, "")
	o.AddBridge(t, "brw")
	o.Vsctl(t, "add-port", "brw", "up0", "--", "set", "Interface", "up0", "type=internal")
	ctx := testutil.Context(t)
	sw, err := ovs.Dial(ctx, o.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	g := &Guard{Switch: sw, OVSDB: o.Endpoint, Bridge: "brw", Uplink: "up0"}
	type outcome struct {
		n   int
		err error
	}
	reports := make(chan outcome, 100)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); g.Watch(wctx, func(n int, err error) { reports <- outcome{n, err} }) }()
	t.Cleanup(func() { stop(); <-done })
	// next waits for the watch to install flows (errors while the switch is away are
	// reported and retried).
	next := func(what string) {
		t.Helper()
		for {
			select {
			case r := <-reports:
				if r.err != nil {
					t.Logf("%s: %v", what, r.err)
					continue
				}
				if r.n > 0 {
					t.Logf("%s: %d flow mods", what, r.n)
					return
				}
			case <-ctx.Done():
				t.Fatalf("%s: the watch never put the guard back", what)
			}
		}
	}
	next("start")
	check := func(what string) {
		t.Helper()
		missing, extra, err := g.Check(ctx)
		if err != nil || len(missing)+len(extra) > 0 {
			t.Fatalf("%s: missing %v, extra %v, %v", what, missing, extra, err)
		}
	}
	check("start")

	o.RestartVswitchd()
	next("ovs-vswitchd restarted")
	check("ovs-vswitchd restarted")

	o.Vsctl(t, "del-port", "brw", "up0")
	o.Vsctl(t, "add-port", "brw", "up0", "--", "set", "Interface", "up0", "type=internal", "ofport_request=41")
	next("uplink re-added")
	for {
		missing, extra, err := g.Check(ctx)
		if err == nil && len(missing)+len(extra) == 0 {
			break
		}
		next("uplink re-added, more") // the delete's and the add's events may come apart
	}
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", "unix:"+filepath.Join(o.Dir, "brw.mgmt"), "in_port=41").CombinedOutput()
	if err != nil || strings.Count(string(out), "cookie=0x6f766e6472616701") != len(Kinds) {
		t.Fatalf("flows of the uplink's new port 41: %v\n%s", err, out)
	}
}
