package engine

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/probe"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// The proof asked of OVN follows each subnet's DHCP and IPv6 mode.
func TestReadyPlanPerFamily(t *testing.T) {
	v4 := neutron.Subnet{ID: "4", CIDR: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"), IPVersion: 4, DHCP: true}
	v6 := func(mode string, dhcp bool) neutron.Subnet {
		return neutron.Subnet{ID: "6", CIDR: netip.MustParsePrefix("fd00::/64"), Gateway: netip.MustParseAddr("fd00::1"),
			IPVersion: 6, DHCP: dhcp, IPv6AddressMode: mode, IPv6RAMode: mode}
	}
	ip4, ip6 := netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fd00::f816:3eff:fe01:203")
	for _, tc := range []struct {
		name    string
		subs    []neutron.Subnet
		probes  []string
		gateway string // what the gateways are asked, in the plan's words
	}{
		{"dual stack, stateful", []neutron.Subnet{v4, v6(neutron.ModeStateful, true)}, []string{"10.0.0.5", ip6.String()}, ""},
		{"IPv6 only, stateful", []neutron.Subnet{v6(neutron.ModeStateful, true)}, []string{ip6.String()}, ""},
		{"IPv6 only, stateless", []neutron.Subnet{v6(neutron.ModeStateless, true)}, []string{"::"}, ""},
		// Without DHCP, the gateway answers (once findRouters finds its router port).
		{"IPv6 only, SLAAC", []neutron.Subnet{v6(neutron.ModeSLAAC, true)}, nil, "router advertisement of fd00::/64"},
		{"dual stack, static IPv6", []neutron.Subnet{v4, v6("", true)}, []string{"10.0.0.5"}, "neighbor advertisement of gateway fd00::1"},
		{"DHCP off", []neutron.Subnet{func() neutron.Subnet { s := v4; s.DHCP = false; return s }(), v6("", false)}, nil,
			"ARP reply of gateway 10.0.0.1; neighbor advertisement of gateway fd00::1"},
	} {
		n := &neutron.Network{ID: "n", Subnets: tc.subs}
		p := &neutron.Port{ID: "p", MAC: net.HardwareAddr{0xfa, 0x16, 0x3e, 1, 2, 3}}
		for _, s := range tc.subs {
			ip := ip4
			if s.IPVersion == 6 {
				ip = ip6
			}
			p.FixedIPs = append(p.FixedIPs, neutron.FixedIP{SubnetID: s.ID, IP: ip})
		}
		var a state.Attachment
		fillFromPort(&a, p, n)
		if len(a.Gateways) != len(tc.subs) {
			t.Errorf("%s: gateways %v, want one per family", tc.name, a.Gateways)
		}
		plan := readyPlan(&a)
		var got []string
		for _, ip := range plan.probes {
			got = append(got, ip.String())
		}
		if !slices.Equal(got, tc.probes) {
			t.Errorf("%s: probes %v, want %v", tc.name, got, tc.probes)
		}
		if say := plan.say(); len(plan.skipped) > 0 || (tc.gateway == "") != (len(plan.gateways) == 0) || !strings.Contains(say, tc.gateway) {
			t.Errorf("%s: plan says %q, want gateways asked %q", tc.name, say, tc.gateway)
		}
	}
}

// A dual-stack attach with DHCP on both families probes both before it is attached.
func TestAttachProbesEachFamily(t *testing.T) {
	h := newHarness(t)
	h.net.Subnets[1].DHCP, h.net.Subnets[1].IPv6AddressMode = true, neutron.ModeStateful
	att := h.attach(t, h.request("o", "eth0"))
	var probed []string
	for _, c := range h.w.log() {
		if c.Name == "links.Probe" {
			probed = append(probed, c.Args[len(c.Args)-1].(string))
		}
	}
	if len(att.IPs) != 2 || len(probed) != 2 || !strings.Contains(att.IPs[1], probed[1]) || !strings.Contains(att.IPs[0], probed[0]) {
		t.Fatalf("addresses %v, probed %v: want both families, IPv4 first", att.IPs, probed)
	}
	s := specOf(att, "/run/netns/o", true)
	if len(s.Addrs) != 2 || len(s.Gateways) != 2 {
		t.Fatalf("spec %+v: want both families' addresses and default routes", s)
	}
}

// A family without DHCP is proven through its gateway where a router port holds it;
// otherwise through OVN's answer for another port's address, and with no other port it
// is skipped, and the log says why. A replug asks the gateways found at the attach again,
// with no Neutron call.
func TestAttachProvesThroughTheGateway(t *testing.T) {
	for _, tc := range []struct {
		name     string
		router   bool
		neighbor bool // another ACTIVE port on the network, in another VM
		say      string
	}{
		{"router at the gateway", true, false, "neighbor advertisement of gateway fd00:1::1 (router port rp-6)"},
		{"no router, another port", false, true, "neighbor advertisement from OVN for fd00:1::99 (port other-vm)"},
		{"no router, nothing else", false, false,
			"not proven: IPv6 (no DHCP, and no router port at its gateway fd00:1::1, and nothing else on the network to answer: nothing on it can be reached yet either)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t) // its IPv6 subnet is static, without DHCPv6
			if tc.router {
				h.w.routers = map[netip.Addr]string{netip.MustParseAddr("fd00:1::1"): "rp-6"}
			}
			if tc.neighbor {
				h.w.neighbors = []neutron.Neighbor{{PortID: "other-vm", DeviceOwner: "trunk:subport", Active: true, PortSecurity: true,
					IPs: []netip.Addr{netip.MustParseAddr("10.0.0.99"), netip.MustParseAddr("fd00:1::99")}}}
			}
			att := h.attach(t, h.request("o", "eth0"))
			var gws []string
			for _, c := range h.w.log() {
				if c.Name == "links.ProbeGateway" {
					gws = append(gws, c.Args[len(c.Args)-1].(string))
				}
			}
			plan := h.e.findNeighbors(context.Background(), att, h.e.findRouters(context.Background(), att, readyPlan(att)))
			if !strings.Contains(plan.say(), tc.say) {
				t.Errorf("plan says %q, want %q", plan.say(), tc.say)
			}
			if want := 0; tc.router || tc.neighbor {
				want = 1
				if len(gws) != want || !strings.Contains(gws[0], tc.say) {
					t.Fatalf("gateway probes %v: want %q", gws, tc.say)
				}
			} else if len(gws) != 0 {
				t.Fatalf("gateway probes %v with nothing to answer", gws)
			}
			if tc.router != (len(att.ProbeRouters) == 1) {
				t.Fatalf("recorded %v (router: %v)", att.ProbeRouters, tc.router)
			}

			h.w.reset()
			if _, err := h.e.Replug(context.Background(), att.ID, "/run/netns/o2", true); err != nil {
				t.Fatal(err)
			}
			var replugGW int
			for _, c := range h.w.log() {
				if strings.HasPrefix(c.Name, "neutron.") {
					t.Errorf("replug asked Neutron: %s", c.Name)
				}
				if c.Name == "links.ProbeGateway" {
					replugGW++
				}
			}
			if tc.router != (replugGW == 1) {
				t.Errorf("replug probed the gateway %d times (router: %v)", replugGW, tc.router)
			}
		})
	}
}

// The second container on a network with neither DHCP nor router is proven through the
// first one's address; the first one, alone, is not.
func TestAttachProvesThroughAnotherPort(t *testing.T) {
	h := newHarness(t)
	h.net.Subnets[0].DHCP = false
	first := h.attach(t, h.request("a", "eth0"))
	plan := h.e.findNeighbors(context.Background(), first, h.e.findRouters(context.Background(), first, readyPlan(first)))
	if len(plan.gateways) != 0 || len(plan.skipped) != 2 || !strings.Contains(plan.say(), "nothing else on the network to answer") {
		t.Fatalf("first: plan says %q, want both families not proven", plan.say())
	}
	h.w.reset()
	second := h.attach(t, h.request("b", "eth0"))
	var asked []string
	for _, c := range h.w.log() {
		if c.Name == "links.ProbeGateway" {
			asked = append(asked, c.Args[len(c.Args)-1].(string))
		}
	}
	ip4, ip6 := strings.Split(first.IPs[0], "/")[0], strings.Split(first.IPs[1], "/")[0]
	if len(asked) != 2 || !strings.Contains(asked[0], "ARP reply from OVN for "+ip4+" (port "+first.PortID+")") ||
		!strings.Contains(asked[1], "neighbor advertisement from OVN for "+ip6+" (port "+first.PortID+")") {
		t.Fatalf("second (%v) asked %q, want the first one's addresses", second.IPs, asked)
	}
}

// The address asked for is of the family, on another port OVN answers for, in the
// port's own subnet where one is.
func TestPickNeighbor(t *testing.T) {
	a := netip.MustParseAddr
	src4, src6 := netip.MustParsePrefix("10.0.0.5/24"), netip.MustParsePrefix("fd00:1::5/64")
	const vm = "compute:nova"
	own := neutron.Neighbor{PortID: "own", DeviceOwner: "trunk:subport", PortSecurity: true, IPs: []netip.Addr{a("10.0.0.5"), a("fd00:1::5")}}
	open := neutron.Neighbor{PortID: "open", DeviceOwner: vm, IPs: []netip.Addr{a("10.0.0.6"), a("fd00:1::6")}} // port security off: "unknown"
	vip := neutron.Neighbor{PortID: "vip", PortSecurity: true, IPs: []netip.Addr{a("10.0.0.4")}}                // no owner: maybe a virtual port
	router := neutron.Neighbor{PortID: "rtr", DeviceOwner: "network:router_interface", IPs: []netip.Addr{a("10.0.0.7")}}
	other := neutron.Neighbor{PortID: "other", DeviceOwner: vm, PortSecurity: true, IPs: []netip.Addr{a("10.1.0.8"), a("fd00:2::8")}}
	same := neutron.Neighbor{PortID: "same", DeviceOwner: "ovn-docker", PortSecurity: true, IPs: []netip.Addr{a("fd00:1::9")}}
	up := neutron.Neighbor{PortID: "up", DeviceOwner: vm, Active: true, PortSecurity: true, IPs: []netip.Addr{a("10.1.0.10")}}
	for _, tc := range []struct {
		name     string
		ns       []neutron.Neighbor
		src      netip.Prefix
		ip, port string // "" : none
	}{
		{"alone", []neutron.Neighbor{own}, src4, "", ""},
		{"nothing at all", nil, src6, "", ""},
		{"port security off is not answered", []neutron.Neighbor{own, open}, src4, "", ""},
		{"nor a port with no owner", []neutron.Neighbor{vip, own}, src4, "", ""},
		{"a router's port is", []neutron.Neighbor{own, open, router}, src4, "10.0.0.7", "rtr"},
		{"another subnet, if nothing else", []neutron.Neighbor{own, other}, src4, "10.1.0.8", "other"},
		{"own subnet first", []neutron.Neighbor{other, own, same}, src6, "fd00:1::9", "same"},
		{"an ACTIVE port first", []neutron.Neighbor{own, router, up}, src4, "10.1.0.10", "up"},
		{"only the family", []neutron.Neighbor{own, router}, src6, "", ""},
	} {
		ip, port, ok := pickNeighbor(tc.ns, "own", tc.src)
		if ok != (tc.ip != "") || (ok && (ip.String() != tc.ip || port.PortID != tc.port)) {
			t.Errorf("%s: picked %v %q %v, want %q %q", tc.name, ip, port.PortID, ok, tc.ip, tc.port)
		}
	}
}

// A pool on a network with neither DHCP nor router proves its interfaces through each
// other: the first through a port of its batch that Neutron still has DOWN (OVN answers
// for it all the same), the next ones through the first, ACTIVE by then; one Neutron list
// each, at rest. Taking one makes no call.
func TestPoolProvesThroughItsOwnPorts(t *testing.T) {
	h := newHarness(t)
	h.net.Subnets[0].DHCP = false
	ctx := context.Background()
	const pool = "pool:net-1:"
	atts, err := h.e.PrepareBatch(ctx, Request{Owner: pool, OwnerKind: state.OwnerPool, Pool: pool, Network: h.net, AtRest: true}, 3)
	if err != nil {
		t.Fatal(err)
	}
	h.w.reset()
	for _, a := range atts {
		if _, err := h.e.Plumb(ctx, a.ID, Request{Owner: pool, OwnerKind: state.OwnerPool}); err != nil {
			t.Fatal(err)
		}
	}
	var asked []string
	for _, c := range h.w.log() {
		if c.Name == "links.ProbeGateway" {
			asked = append(asked, c.Args[len(c.Args)-1].(string))
		}
	}
	if len(callsNamed(h.w.log(), "neutron.Neighbors")) != 3 || len(asked) != 6 ||
		!strings.Contains(asked[0], "(port "+atts[1].PortID+", DOWN in Neutron)") ||
		!strings.Contains(asked[2], "(port "+atts[0].PortID+")") || !strings.Contains(asked[5], "(port "+atts[0].PortID+")") {
		t.Fatalf("asked %q: want the 1st interface proven through the 2nd (DOWN), the others through the 1st, both families", asked)
	}
	h.w.reset()
	got, err := h.e.Claim(ctx, pool, h.request("c", "eth0"))
	if err != nil || got == nil {
		t.Fatalf("claim: %+v %v", got, err)
	}
	if _, err := h.e.Take(ctx, got.ID, h.request("c", "eth0")); err != nil {
		t.Fatal(err)
	}
	if n := len(callsNamed(h.w.log(), "neutron.Neighbors")) + len(callsNamed(h.w.log(), "links.ProbeGateway")); n != 0 {
		t.Fatalf("the warm path looked for neighbors or probed (%d calls)", n)
	}
}

// OVN's silence for a port Neutron has DOWN may be the deployment's (ignore_lsp_down=false):
// the attach goes on, not proven; silence for an ACTIVE port's address fails it.
func TestNeighborSilence(t *testing.T) {
	for _, active := range []bool{false, true} {
		h := newHarness(t, func(c *Config) { c.ReadyTimeout = time.Second })
		h.w.neighbors = []neutron.Neighbor{{PortID: "other-vm", DeviceOwner: "trunk:subport", Active: active, PortSecurity: true,
			IPs: []netip.Addr{netip.MustParseAddr("fd00:1::99")}}}
		h.w.failAt("links.ProbeGateway", 0, probe.ErrNoGateway)
		_, err := h.e.Attach(context.Background(), h.request("o", "eth0"))
		if active != (err != nil) {
			t.Errorf("neighbor ACTIVE %v: attach error %v", active, err)
		}
	}
}
