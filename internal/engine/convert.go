package engine

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// fillFromPort records the port's MAC, its addresses with their subnets' prefixes, one
// gateway per IP family (used only when the interface carries the default route), and
// what OVN will answer to prove each family's data path.
func fillFromPort(a *state.Attachment, p *neutron.Port, n *neutron.Network) {
	a.PortID, a.MAC = p.ID, p.MAC.String()
	a.IPs, a.Gateways, a.ProbeIP, a.ProbeIP6, a.ProbeRA6 = nil, nil, "", "", ""
	gwSeen := map[int]bool{}
	for _, f := range p.FixedIPs {
		bits := 32
		if f.IP.Is6() {
			bits = 128
		}
		sub, ok := n.SubnetByID(f.SubnetID)
		if ok {
			bits = sub.CIDR.Bits()
		}
		a.IPs = append(a.IPs, netip.PrefixFrom(f.IP, bits).String())
		if ok && sub.DHCP && f.IP.Is4() && a.ProbeIP == "" {
			a.ProbeIP = f.IP.String()
		}
		if ok && a.ProbeIP6 == "" {
			a.ProbeIP6 = probe6(sub, f.IP)
		}
		if ok && sub.IPVersion == 6 && sub.IPv6RAMode != "" && a.ProbeRA6 == "" {
			a.ProbeRA6 = sub.CIDR.Masked().String()
		}
		if ok && sub.Gateway.IsValid() && !gwSeen[sub.IPVersion] {
			gwSeen[sub.IPVersion] = true
			a.Gateways = append(a.Gateways, sub.Gateway.String())
		}
	}
}

// probe6 is what OVN's DHCPv6 must answer for ip on sub: ip itself on a stateful
// subnet, :: (an answer without address) on a stateless one, "" when OVN runs no
// DHCPv6 there (SLAAC, static, DHCP off).
func probe6(sub neutron.Subnet, ip netip.Addr) string {
	if sub.IPVersion != 6 || !sub.DHCP {
		return ""
	}
	switch sub.IPv6AddressMode {
	case neutron.ModeStateful:
		return ip.String()
	case neutron.ModeStateless:
		return netip.IPv6Unspecified().String()
	}
	return ""
}

func specOf(a *state.Attachment, netns string, defaultRoute bool) netdev.Spec {
	s := netdev.Spec{HostName: a.HostIf, PeerName: a.PeerIf, NetNS: netns, IfName: a.IfName, MTU: a.MTU}
	s.MAC, _ = net.ParseMAC(a.MAC)
	for _, ip := range a.IPs {
		if p, err := netip.ParsePrefix(ip); err == nil {
			s.Addrs = append(s.Addrs, net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
		}
	}
	for _, g := range a.Gateways {
		if !defaultRoute {
			break
		}
		if ip := net.ParseIP(g); ip != nil {
			s.Gateways = append(s.Gateways, ip)
		}
	}
	return s
}

func (e *Engine) accessPort(att *state.Attachment) ovs.AccessPort {
	return ovs.AccessPort{Bridge: e.cfg.Bridge, Name: att.HostIf, Tag: att.VLAN,
		ExternalIDs: map[string]string{ExtAttachment: att.ID, ExtPort: att.PortID, ExtVLAN: fmt.Sprint(att.VLAN),
			ExtNetwork: att.NetworkID, ExtContainer: att.Container}}
}
