package raguard

import (
	"slices"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/openflow"
)

func TestFlows(t *testing.T) {
	fs := Flows(7)
	if len(fs) != 3*len(Kinds) {
		t.Fatalf("%d flows, want %d", len(fs), 3*len(Kinds))
	}
	var got []string
	for _, f := range fs {
		if f.Cookie != Cookie || f.Table != 0 {
			t.Errorf("%v: cookie or table", f)
		}
		got = append(got, f.String())
	}
	for _, want := range []string{
		"table=0,priority=60000,cookie=0x6f766e6472616701,eth_type=0x86dd,ip_proto=58,icmpv6_type=134 actions=drop",
		"table=0,priority=60001,cookie=0x6f766e6472616701,in_port=7,eth_type=0x86dd,ip_proto=58,icmpv6_type=134 actions=output:NORMAL",
		"table=0,priority=60001,cookie=0x6f766e6472616701,in_port=LOCAL,eth_type=0x86dd,ip_proto=58,icmpv6_type=134 actions=output:NORMAL",
		"table=0,priority=60000,cookie=0x6f766e6472616701,eth_type=0x86dd,ip_proto=58,icmpv6_type=137 actions=drop",
		"table=0,priority=60000,cookie=0x6f766e6472616701,eth_type=0x0800,ip_proto=17,udp_src=67 actions=drop",
		"table=0,priority=60001,cookie=0x6f766e6472616701,in_port=7,eth_type=0x86dd,ip_proto=17,udp_src=547 actions=output:NORMAL",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("no flow %s in\n%v", want, got)
		}
	}
	// The kinds' matches are not shared between flows (append must copy).
	if fs[1].Match.Equal(fs[2].Match) {
		t.Errorf("uplink and LOCAL flows share a match: %v", fs[1])
	}
}

func TestPlan(t *testing.T) {
	want := Flows(3)
	if mods := Plan(want, want); len(mods) != 0 {
		t.Errorf("in place: %v, want nothing", mods)
	}
	// The uplink came back as port 9: its flows are added, then port 3's deleted.
	have := Flows(3)
	mods := Plan(Flows(9), have)
	if len(mods) != 2*len(Kinds) {
		t.Fatalf("uplink moved: %d mods, want %d: %v", len(mods), 2*len(Kinds), mods)
	}
	for i, m := range mods {
		s := m.String()
		add := i < len(Kinds)
		if add != (s[:4] == "add ") {
			t.Errorf("mod %d %s: adds come first", i, s)
		}
	}
	// Missing flows are added; a flow of another cookie is never touched.
	other := openflow.Flow{Priority: 5, Cookie: 1, Match: openflow.Match{openflow.InPort(1)}}
	mods = Plan(want, append(slices.Clone(want[:4]), other))
	if len(mods) != len(want)-4 {
		t.Errorf("partial: %d mods, want %d: %v", len(mods), len(want)-4, mods)
	}
	// A flow of ours that does something else (NORMAL on the drop's match) is replaced.
	bad := want[0]
	bad.Output = []uint32{openflow.PortNormal}
	missing, extra := Diff(want, append(slices.Clone(want[1:]), bad))
	if len(missing) != 1 || len(extra) != 1 || !missing[0].Equal(want[0]) {
		t.Errorf("changed flow: missing %v extra %v", missing, extra)
	}
}

func TestMgmtSocket(t *testing.T) {
	for in, want := range map[string]string{
		"unix:/var/run/openvswitch/db.sock":              "/var/run/openvswitch/br0.mgmt",
		"unix:/var/lib/ovn-docker-stack/vm3/ovs/db.sock": "/var/lib/ovn-docker-stack/vm3/ovs/br0.mgmt",
	} {
		if got, err := MgmtSocket(in, "br0"); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"tcp:127.0.0.1:6640", "unix:", ""} {
		if _, err := MgmtSocket(in, "br0"); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestGuardSocket(t *testing.T) {
	g := &Guard{OVSDB: "tcp:127.0.0.1:6640", Bridge: "br0"}
	if _, err := g.socket(); err == nil || !strings.Contains(err.Error(), "--ovs-rundir") {
		t.Errorf("tcp database, no rundir: %v, want a refusal naming --ovs-rundir", err)
	}
	g.RunDir = "/run/openvswitch"
	if got, err := g.socket(); err != nil || got != "/run/openvswitch/br0.mgmt" {
		t.Errorf("rundir given: %q %v", got, err)
	}
}
