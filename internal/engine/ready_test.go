package engine

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
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

// A family without DHCP is proven through its gateway only where a router port holds
// it; otherwise it is skipped, and the log says why. A replug asks the gateways found at
// the attach again, with no Neutron call.
func TestAttachProvesThroughTheGateway(t *testing.T) {
	for _, tc := range []struct {
		name   string
		router bool
		say    string
	}{
		{"router at the gateway", true, "neighbor advertisement of gateway fd00:1::1 (router port rp-6)"},
		{"no router", false, "not proven: IPv6 (no DHCP, and no router port at its gateway fd00:1::1 to answer)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t) // its IPv6 subnet is static, without DHCPv6
			if tc.router {
				h.w.routers = map[netip.Addr]string{netip.MustParseAddr("fd00:1::1"): "rp-6"}
			}
			att := h.attach(t, h.request("o", "eth0"))
			var gws []string
			for _, c := range h.w.log() {
				if c.Name == "links.ProbeGateway" {
					gws = append(gws, c.Args[len(c.Args)-1].(string))
				}
			}
			plan := h.e.findRouters(context.Background(), att, readyPlan(att))
			if !strings.Contains(plan.say(), tc.say) {
				t.Errorf("plan says %q, want %q", plan.say(), tc.say)
			}
			if want := 0; tc.router {
				want = 1
				if len(gws) != want || !strings.Contains(gws[0], "fd00:1::1") || len(att.ProbeRouters) != 1 {
					t.Fatalf("gateway probes %v, recorded %v: want fd00:1::1's", gws, att.ProbeRouters)
				}
			} else if len(gws) != 0 || len(att.ProbeRouters) != 0 {
				t.Fatalf("gateway probes %v, recorded %v without a router", gws, att.ProbeRouters)
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
