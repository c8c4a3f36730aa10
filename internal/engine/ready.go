package engine

import (
	"net/netip"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/state"
)

// proofPlan is how an attachment's data path is proven before its container starts:
// what OVN is asked, per family, and the families it cannot be asked about.
type proofPlan struct {
	probes []netip.Addr // DHCPv4 first: it proves the path both families share
	// gateways are the families without DHCP, asked of their gateway's router port
	// instead (see gateways.go): candidates until findRouters finds the ports.
	gateways []GatewayProof
	// orphans are the families neither DHCP nor a router port answers for: OVN's switch
	// answers for another port's address instead, where there is one (see neighbors.go).
	orphans []orphan
	skipped []string
}

// readyPlan reads the plan from what fillFromPort recorded. A family without DHCP
// (IPv4 DHCP off; IPv6 SLAAC, static or DHCP off) is left to its gateway, which OVN
// answers for only when it is a Neutron router's port; without a gateway, to another
// port of the network.
func readyPlan(att *state.Attachment) proofPlan {
	var p proofPlan
	var addr4, addr6 netip.Prefix
	for _, ip := range att.IPs {
		if pfx, err := netip.ParsePrefix(ip); err == nil {
			if pfx.Addr().Is4() && !addr4.IsValid() {
				addr4 = pfx
			} else if pfx.Addr().Is6() && !addr6.IsValid() {
				addr6 = pfx
			}
		}
	}
	var gw4, gw6 netip.Addr
	for _, g := range att.Gateways {
		if ip, err := netip.ParseAddr(g); err == nil && ip.Is4() {
			gw4 = ip
		} else if err == nil {
			gw6 = ip
		}
	}
	if ip, err := netip.ParseAddr(att.ProbeIP); err == nil && ip.Is4() {
		p.probes = append(p.probes, ip)
	} else if addr4.IsValid() && gw4.IsValid() {
		p.gateways = append(p.gateways, GatewayProof{Src: addr4, Gateway: gw4})
	} else if addr4.IsValid() {
		p.orphans = append(p.orphans, orphan{src: addr4, why: "no DHCP and no gateway on its subnet"})
	}
	if ip, err := netip.ParseAddr(att.ProbeIP6); err == nil && ip.Is6() {
		p.probes = append(p.probes, ip)
	} else if addr6.IsValid() && gw6.IsValid() {
		p.gateways = append(p.gateways, GatewayProof{Src: addr6, Gateway: gw6, RA: att.ProbeRA6 != ""})
	} else if addr6.IsValid() {
		p.orphans = append(p.orphans, orphan{src: addr6, why: "no DHCPv6 and no gateway on its subnet"})
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
	for _, g := range p.gateways {
		parts = append(parts, g.String())
	}
	for _, o := range p.orphans { // not yet looked for (findNeighbors)
		parts = append(parts, "not yet proven: "+family(o.src.Addr())+" ("+o.why+")")
	}
	if len(p.skipped) > 0 {
		parts = append(parts, "not proven: "+strings.Join(p.skipped, ", "))
	}
	if len(parts) == 0 {
		return "none: no address"
	}
	return strings.Join(parts, "; ")
}
