//go:build integration

package openflow

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// dumpFlows is ovs-ofctl's view of the bridge's flows with cookie.
func dumpFlows(t *testing.T, sock, cookie string) string {
	t.Helper()
	out, err := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", "unix:"+sock, "cookie="+cookie+"/-1").CombinedOutput()
	if err != nil {
		t.Fatalf("ovs-ofctl dump-flows: %v: %s", err, out)
	}
	return string(out)
}

// TestRealSwitch adds flows on a real Open vSwitch bridge through its management
// socket, reads them back with ovs-ofctl and with Flows, gets a refused flow mod as an
// *Error, and deletes by cookie without touching another cookie's flows.
func TestRealSwitch(t *testing.T) {
	o := testutil.StartOVS(t, "")
	o.AddBridge(t, "brof")
	sock := filepath.Join(o.Dir, "brof.mgmt")
	ctx := testutil.Context(t)
	c, err := Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ra := Match{EthType(0x86dd), IPProto(58), ICMPv6Type(134)}
	drop := Flow{Priority: 60000, Cookie: 0xabc, Match: ra}
	normal := Flow{Priority: 60001, Cookie: 0xabc, Match: append(Match{InPort(PortLocal)}, ra...), Output: []uint32{PortNormal}}
	dhcp := Flow{Priority: 60000, Cookie: 0xabc, Match: Match{EthType(0x0800), IPProto(17), UDPSrc(67)}}
	theirs := Flow{Priority: 7, Cookie: 0xdef, Match: Match{InPort(PortLocal)}, Output: []uint32{PortNormal}}
	if err := c.Apply(ctx, Add(drop), Add(normal), Add(dhcp), Add(theirs)); err != nil {
		t.Fatal(err)
	}
	got := dumpFlows(t, sock, "0xabc")
	for _, want := range []string{
		"cookie=0xabc, priority=60000,icmp6,icmp_type=134 actions=drop",
		"cookie=0xabc, priority=60001,icmp6,in_port=LOCAL,icmp_type=134 actions=NORMAL",
		"cookie=0xabc, priority=60000,udp,tp_src=67 actions=drop",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ovs-ofctl does not show %q in:\n%s", want, got)
		}
	}
	flows, err := c.Flows(ctx, 0xabc, ^uint64(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 3 {
		t.Fatalf("Flows: %v, want 3", flows)
	}
	for _, w := range []Flow{drop, normal, dhcp} {
		found := false
		for _, f := range flows {
			found = found || f.Equal(w)
		}
		if !found {
			t.Errorf("Flows does not give back %v: %v", w, flows)
		}
	}
	// Adding again changes nothing (same match and priority: replaced).
	if err := c.Apply(ctx, Add(drop)); err != nil {
		t.Fatal(err)
	}
	if again := dumpFlows(t, sock, "0xabc"); strings.Count(again, "cookie=") != 3 {
		t.Errorf("after a second add:\n%s", again)
	}

	// icmpv6_type without its prerequisites is refused: the error names the flow mod.
	err = c.Apply(ctx, Add(Flow{Priority: 1, Cookie: 0xabc, Match: Match{ICMPv6Type(134)}}))
	var oe *Error
	if !errors.As(err, &oe) || oe.Type != 4 {
		t.Fatalf("flow without prerequisites: err %v, want a bad match error", err)
	}
	t.Logf("refused as expected: %v", err)

	if err := c.Apply(ctx, DeleteStrict(dhcp)); err != nil {
		t.Fatal(err)
	}
	if got := dumpFlows(t, sock, "0xabc"); strings.Contains(got, "udp") || strings.Count(got, "cookie=") != 2 {
		t.Errorf("after delete strict:\n%s", got)
	}
	if err := c.Apply(ctx, DeleteCookie(0xabc)); err != nil {
		t.Fatal(err)
	}
	if got := dumpFlows(t, sock, "0xabc"); strings.Contains(got, "cookie=") {
		t.Errorf("after delete by cookie, left:\n%s", got)
	}
	if got := dumpFlows(t, sock, "0xdef"); !strings.Contains(got, "cookie=0xdef, priority=7,in_port=LOCAL actions=NORMAL") {
		t.Errorf("another cookie's flow is gone:\n%s", got)
	}
}
