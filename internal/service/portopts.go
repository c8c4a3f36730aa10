package service

import (
	"context"
	"errors"
	"net/netip"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

// portOptions resolves what a run or an attach asks of its ports, before anything is
// made: the allowed addresses parsed, the QoS policy's ID, and the dns_name from the
// hostname where Neutron has DNS integration (none where it has not: a hostname is no
// request for DNS). The allowed addresses are per network (forNetwork).
func (s *Service) portOptions(ctx context.Context, nc *neutron.Client, o api.PortOptions, hostname string, secGroups []string) (neutron.PortOptions, error) {
	var out neutron.PortOptions
	if o.NoPortSecurity && len(secGroups) > 0 {
		return out, api.Invalid(errors.New("--no-port-security and --security-group: a port without port security has no security groups; give one or the other"))
	}
	if o.NoPortSecurity && len(o.AllowedAddresses) > 0 {
		return out, api.Invalid(errors.New("--no-port-security and --allowed-address: without port security the port may use any address already; give one or the other"))
	}
	for _, a := range o.AllowedAddresses {
		p, err := neutron.ParseAddressPair(a)
		if err != nil {
			return out, api.Invalid(err)
		}
		out.AllowedAddresses = append(out.AllowedAddresses, p)
	}
	out.NoPortSecurity = o.NoPortSecurity
	if o.QoSPolicy != "" {
		id, err := nc.QoSPolicyID(ctx, o.QoSPolicy)
		if err != nil {
			return out, err
		}
		out.QoSPolicyID = id
	}
	if hostname != "" {
		label := neutron.DNSLabel(hostname)
		has, err := nc.HasExtension(ctx, neutron.ExtDNSIntegration)
		switch {
		case err != nil:
			return out, err
		case !has:
			s.log.Debug("Neutron has no DNS integration: the port gets no dns_name", "hostname", hostname)
		case label == "":
			s.log.Info("the hostname makes no DNS label: the port gets no dns_name", "hostname", hostname)
		default:
			out.DNSName = label
		}
	}
	return out, nil
}

// forNetwork is o for the port on n: the allowed addresses that lie in one of n's
// subnets, and, for the first interface, those that lie in no subnet of any of nets.
func forNetwork(o neutron.PortOptions, n *neutron.Network, first bool, nets []*neutron.Network) neutron.PortOptions {
	pairs := o.AllowedAddresses
	o.AllowedAddresses = nil
	for _, p := range pairs {
		switch {
		case inNetwork(p, n):
			o.AllowedAddresses = append(o.AllowedAddresses, p)
		case first && !inAny(p, nets):
			o.AllowedAddresses = append(o.AllowedAddresses, p)
		}
	}
	return o
}

func inAny(p neutron.AddressPair, nets []*neutron.Network) bool {
	for _, n := range nets {
		if inNetwork(p, n) {
			return true
		}
	}
	return false
}

// inNetwork says whether the pair's address (or prefix) lies in one of n's subnets.
func inNetwork(p neutron.AddressPair, n *neutron.Network) bool {
	pfx, err := netip.ParsePrefix(p.IP)
	if err != nil {
		a, err := netip.ParseAddr(p.IP)
		if err != nil {
			return false
		}
		pfx = netip.PrefixFrom(a, a.BitLen())
	}
	for _, s := range n.Subnets {
		if s.CIDR.Bits() <= pfx.Bits() && s.CIDR.Contains(pfx.Addr()) {
			return true
		}
	}
	return false
}

// nameLater gives a pool's port, taken by a request with a hostname, its dns_name once no
// run or ADD is starting: a pool's ports are made before anyone names them.
func (s *Service) nameLater(eng *engine.Engine, portID, dnsName string) {
	s.whenQuiet(func(ctx context.Context) {
		if err := eng.NamePort(ctx, portID, dnsName); err != nil && !errors.Is(err, neutron.ErrNotFound) {
			s.log.Warn("could not give the Neutron port its dns_name", "port", portID, "dns_name", dnsName, "err", err)
		}
	})
}
