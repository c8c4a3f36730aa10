package dockerplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// IPv6 (docker network create --ipv6). Docker 20.10 gives every network an IPv4 pool and,
// with --ipv6, an IPv6 pool too, and asks each for an address of each endpoint, IPv4
// first, with nothing that ties the two requests together. In Neutron both addresses are
// one port's. So the IPv4 pool makes (or takes) the port, with both families, and the
// IPv6 pool hands out the IPv6 address of the port its IPv4 pool handed out last and
// whose IPv6 address no endpoint has yet: Docker creates a network's endpoints one at a
// time (libnetwork holds the network's lock from the first RequestAddress to the end of
// CreateEndpoint), so that port is this endpoint's. CreateEndpoint checks the pair.

// Driver options (-o) for the IPv6 subnet of a network the plugin makes, named as
// ovn-docker create network names them.
const (
	OptIPv6AddressMode = "ipv6-address-mode"
	OptIPv6RAMode      = "ipv6-ra-mode"
)

// requestPool6 is RequestPool for an IPv6 pool: adopted with the same --ipam-opt as the
// IPv4 pool (the network's IPv6 subnet), or a range (--subnet) for the network the
// driver makes.
func (p *Plugin) requestPool6(ctx context.Context, r *requestPoolRequest) (any, error) {
	adopt, err := parseAdoption(r.Options, true)
	if err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	pool := &state.DockerPool{ID: id, V6: true, Requested: p.cfg.Now().UTC()}
	switch {
	case adopt.any():
		n, sub, err := p.resolveSubnet(ctx, adopt, r.Pool, 6)
		if err != nil {
			return nil, err
		}
		adoptSubnet(pool, n, sub)
	case r.Pool != "":
		pfx, err := netip.ParsePrefix(r.Pool)
		if err != nil || !pfx.Addr().Is6() || pfx.Addr().Is4In6() || pfx.Masked() != pfx {
			return nil, fmt.Errorf("IPv6 subnet %q is not an IPv6 network in CIDR notation", r.Pool)
		}
		pool.CIDR = pfx.String()
	default:
		return nil, errors.New("an IPv6 network needs its IPv6 range: give --subnet with an IPv6 prefix, or adopt a Neutron network (--ipam-opt neutron.net.name=...)")
	}
	return p.savePool(ctx, pool, r.SubPool)
}

// subnet6 is n's IPv6 subnet: the one of CIDR want when given, else the only one.
func subnet6(n *neutron.Network, want string) (neutron.Subnet, error) {
	return familySubnet(n, 6, "", want)
}

// pool6For finds the IPv6 pool Docker's CreateNetwork names (IPv6Data), as for IPv4.
func pool6For(recs engine.DockerRecords, d ipamData) (*state.DockerPool, error) {
	gw, err := parseIP(d.Gateway)
	if err != nil {
		return nil, fmt.Errorf("IPv6 gateway: %w", err)
	}
	var pool *state.DockerPool
	for _, pl := range recs.Pools {
		if pl.V6 && pl.Network == "" && pl.CIDR == d.Pool && pl.Gateway == gw.String() &&
			(pool == nil || pl.Requested.After(pool.Requested)) {
			pool = pl
		}
	}
	if pool == nil {
		return nil, fmt.Errorf("no IPv6 pool %s with gateway %s from the %s IPAM driver", d.Pool, gw, "ovn")
	}
	return pool, nil
}

// ipv6Modes reads -o ipv6-address-mode and -o ipv6-ra-mode.
func ipv6Modes(opts map[string]string) (addr, ra string) {
	return opts[OptIPv6AddressMode], opts[OptIPv6RAMode]
}

// requestAddress6 is RequestAddress on an IPv6 pool: the IPv6 address of the port this
// endpoint's IPv4 request got (see the top of this file), made exactly want (--ip6)
// when asked.
func (p *Plugin) requestAddress6(ctx context.Context, pool6 *state.DockerPool, pfx netip.Prefix, want string) (_ any, err error) {
	if pool6.Network == "" {
		return nil, fmt.Errorf("IPv6 pool %s serves no network of the %s driver", pool6.ID, p.cfg.Name)
	}
	recs, err := p.cfg.Engine.DockerRecords(ctx)
	if err != nil {
		return nil, err
	}
	rec := recs.Networks[pool6.Network]
	if rec == nil {
		return nil, fmt.Errorf("IPv6 pool %s: its network %s is gone", pool6.ID, short(pool6.Network))
	}
	defer p.locks.lock(poolKey(pool6.ID))()
	att, err := p.pendingV6(ctx, rec.Pool, pfx)
	if err != nil {
		return nil, err
	}
	if att == nil {
		return nil, fmt.Errorf("no IPv4 address was handed out for this endpoint before its IPv6 one: the %s driver gives both from one Neutron port", p.cfg.Name)
	}
	attID, portID := att.ID, att.PortID
	defer func() {
		// Docker does not release the endpoint's IPv4 address when its IPv6 one fails
		// (libnetwork's createEndpoint returns before it defers the release): the port
		// goes here, or it would stay for nobody.
		if err != nil {
			if derr := p.cfg.Engine.Detach(context.WithoutCancel(ctx), attID); derr != nil {
				err = fmt.Errorf("%w (and releasing port %s failed: %v)", err, portID, derr)
			}
		}
	}()
	addr, _ := addressIn(att.IPs, pfx)
	if want != "" {
		ip, err := parseIP(want)
		if err != nil {
			return nil, err
		}
		if !pfx.Contains(ip) {
			return nil, fmt.Errorf("address %s is not in the network's IPv6 subnet %s", ip, pfx)
		}
		if !addr.IsValid() || addr.Addr() != ip {
			n, err := p.nets.network(ctx, pool6.NeutronNetwork)
			if err != nil {
				return nil, err
			}
			if att, err = p.cfg.Engine.Readdress(ctx, att.ID, n, ip); err != nil {
				return nil, err
			}
			addr = netip.PrefixFrom(ip, pfx.Bits())
		}
	} else if pool6.Range != "" {
		rng := netip.MustParsePrefix(pool6.Range)
		if !addr.IsValid() || !rng.Contains(addr.Addr()) {
			n, err := p.nets.network(ctx, pool6.NeutronNetwork)
			if err != nil {
				return nil, err
			}
			ip, err := p.freeIn(ctx, n, rng)
			if err != nil {
				return nil, err
			}
			if att, err = p.cfg.Engine.Readdress(ctx, att.ID, n, ip); err != nil {
				return nil, err
			}
			addr = netip.PrefixFrom(ip, pfx.Bits())
		}
	}
	if !addr.IsValid() {
		return nil, fmt.Errorf("port %s has no address in the IPv6 subnet %s (it has %v)", att.PortID, pfx, att.IPs)
	}
	if _, err := p.cfg.Engine.Hand(ctx, att.ID, engine.Holder{Owner: att.Owner, Kind: att.OwnerKind},
		engine.Holder{Owner: att.Owner, Kind: att.OwnerKind}, func(a *state.Attachment) { a.IPAMPool6 = pool6.ID }); err != nil {
		return nil, err
	}
	p.log.Info("address", "pool", pool6.ID, "address", addr, "attachment", att.ID, "port", att.PortID)
	return requestAddressResponse{Address: netip.PrefixFrom(addr.Addr(), pfx.Bits()).String(), Data: map[string]string{}}, nil
}

// pendingV6 is the port the IPv4 pool handed out last whose IPv6 address no endpoint
// took yet.
func (p *Plugin) pendingV6(ctx context.Context, pool4 string, pfx netip.Prefix) (*state.Attachment, error) {
	atts, err := p.cfg.Engine.AttachmentsOf(ctx, ipamOwner(pool4))
	if err != nil {
		return nil, err
	}
	var pick *state.Attachment
	for _, a := range atts {
		if a.OwnerKind != state.OwnerEndpoint || a.IPAMPool6 != "" || a.PID != 0 {
			continue
		}
		if pick == nil || a.Updated.After(pick.Updated) {
			pick = a
		}
	}
	return pick, nil
}

// releaseAddress6 is ReleaseAddress on an IPv6 pool: the port is its IPv4 pool's to
// release (Docker releases the IPv4 address first); only the mark goes.
func (p *Plugin) releaseAddress6(ctx context.Context, pool6 *state.DockerPool, ip netip.Addr) (any, error) {
	if ip.String() == pool6.Gateway || pool6.NeutronNetwork == "" {
		return struct{}{}, nil
	}
	defer p.locks.lock(poolKey(pool6.ID))()
	atts, err := p.cfg.Engine.AttachmentsOn(ctx, pool6.NeutronNetwork)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		if a.IPAMPool6 == pool6.ID && hasAddress(a, ip) {
			// One being released (its IPv4 address went first) needs nothing more.
			if _, err := p.cfg.Engine.Hand(ctx, a.ID, engine.Holder{Owner: a.Owner, Kind: a.OwnerKind},
				engine.Holder{Owner: a.Owner, Kind: a.OwnerKind}, func(x *state.Attachment) { x.IPAMPool6 = "" }); err != nil && !errors.Is(err, engine.ErrNotHeld) {
				return nil, err
			}
		}
	}
	return struct{}{}, nil
}

// ipv6For is the IPv6 subnet of a network the driver makes, and its gateway: the IPv6
// pool's range and the gateway the IPAM told Docker.
func ipv6For(pool6 *state.DockerPool) (netip.Prefix, netip.Addr, error) {
	pfx, err := netip.ParsePrefix(pool6.CIDR)
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("IPv6 pool %s: %w", pool6.ID, err)
	}
	gw, err := netip.ParseAddr(pool6.Gateway)
	if err != nil {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("IPv6 pool %s: no gateway", pool6.ID)
	}
	return pfx, gw, nil
}

// bindPool6 puts the IPv6 pool on the network's Neutron network: an adopted one must be
// the IPv4 pool's; a range-only one becomes that network's IPv6 subnet.
func (p *Plugin) bindPool6(ctx context.Context, pool6 *state.DockerPool, neutronNet string) error {
	if pool6.NeutronNetwork != "" {
		if pool6.NeutronNetwork != neutronNet {
			return fmt.Errorf("the IPv6 pool is on Neutron network %s, the IPv4 pool on %s: adopt one network for both", pool6.NeutronNetwork, neutronNet)
		}
		return nil
	}
	p.nets.forget(neutronNet)
	n, err := p.nets.network(ctx, neutronNet)
	if err != nil {
		return err
	}
	sub, err := subnet6(n, pool6.CIDR)
	if err != nil {
		return err
	}
	pool6.NeutronNetwork, pool6.Subnet = n.ID, sub.ID
	return nil
}

// samePort6 checks that Docker's IPv6 address for an endpoint is its port's (see the top
// of this file); none given is fine.
func samePort6(att *state.Attachment, addr6 string) error {
	if addr6 == "" {
		return nil
	}
	ip, err := parseIP(addr6)
	if err != nil {
		return err
	}
	if !hasAddress(att, ip) {
		return fmt.Errorf("Docker paired IPv6 address %s with port %s, which has %v: remove the container and run it again", ip, att.PortID, att.IPs)
	}
	return nil
}

// gateway6 is the IPv6 gateway of a Docker network ("" for none).
func (p *Plugin) gateway6(ctx context.Context, networkID string) string {
	recs, err := p.cfg.Engine.DockerRecords(ctx)
	if err != nil {
		return ""
	}
	rec := recs.Networks[networkID]
	if rec == nil || recs.Pools[rec.Pool6] == nil {
		return ""
	}
	return recs.Pools[rec.Pool6].Gateway
}
