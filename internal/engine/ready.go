package engine

import (
	"net/netip"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/state"
)

// proofPlan is how an attachment's data path is proven before its container starts:
// what OVN is asked, per family, and the families it cannot be asked about.
type proofPlan struct {
	probes  []netip.Addr // DHCPv4 first: it proves the path both families share
	skipped []string
}

// readyPlan reads the plan from what fillFromPort recorded. An IPv6 family without
// DHCPv6 (SLAAC, static, DHCP off) has nothing OVN answers without a router (whose port
// would answer neighbor solicitations for the gateway): it is skipped, and said so.
func readyPlan(att *state.Attachment) proofPlan {
	var p proofPlan
	var has4, has6 bool
	for _, ip := range att.IPs {
		if pfx, err := netip.ParsePrefix(ip); err == nil {
			has4 = has4 || pfx.Addr().Is4()
			has6 = has6 || pfx.Addr().Is6()
		}
	}
	if ip, err := netip.ParseAddr(att.ProbeIP); err == nil && ip.Is4() {
		p.probes = append(p.probes, ip)
	} else if has4 {
		p.skipped = append(p.skipped, "IPv4 (no DHCP on its subnet)")
	}
	if ip, err := netip.ParseAddr(att.ProbeIP6); err == nil && ip.Is6() {
		p.probes = append(p.probes, ip)
	} else if has6 {
		p.skipped = append(p.skipped, "IPv6 (no DHCPv6 on its subnet: SLAAC, static or DHCP off)")
	}
	return p
}

// say is the plan in words, for the log.
func (p proofPlan) say() string {
	var parts []string
	for _, ip := range p.probes {
		if ip.Is4() {
			parts = append(parts, "DHCP offer of "+ip.String())
		} else if ip.IsUnspecified() {
			parts = append(parts, "DHCPv6 reply (stateless)")
		} else {
			parts = append(parts, "DHCPv6 advertise of "+ip.String())
		}
	}
	if len(p.skipped) > 0 {
		parts = append(parts, "not proven: "+strings.Join(p.skipped, ", "))
	}
	if len(parts) == 0 {
		return "none: no address"
	}
	return strings.Join(parts, "; ")
}
