package dockerplugin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/netip"

	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Fixed addresses: docker run --ip (and --ip6, see ipv6.go) become the port's fixed_ips,
// and --ip-range, which Neutron cannot be told, is kept by choosing a free address of the
// range (inside the subnet's allocation pools) and asking Neutron for exactly that one.

// subRange checks an --ip-range against its pool's CIDR.
func subRange(sub, cidr string) (string, error) {
	r, err := netip.ParsePrefix(sub)
	pfx, perr := netip.ParsePrefix(cidr)
	if err != nil || perr != nil || r.Masked() != r {
		return "", fmt.Errorf("--ip-range %q is not a range in CIDR notation", sub)
	}
	if r.Addr().BitLen() != pfx.Addr().BitLen() || r.Bits() < pfx.Bits() || !pfx.Contains(r.Addr()) {
		return "", fmt.Errorf("--ip-range %s is not inside the subnet %s", r, pfx)
	}
	return r.String(), nil
}

// rangeTries bounds the addresses tried when others take the chosen ones first.
const rangeTries = 8

// freeIn picks an address of rng, inside the subnet's allocation pools, that no port of
// n has (nor the subnet's own network, gateway or broadcast address), at random.
func (p *Plugin) freeIn(ctx context.Context, n *neutron.Network, rng netip.Prefix) (netip.Addr, error) {
	used, err := p.cfg.Neutron.UsedAddresses(ctx, n.ID)
	if err != nil {
		return netip.Addr{}, err
	}
	sub, ok := subnetOf(n, rng.Addr())
	if !ok {
		return netip.Addr{}, fmt.Errorf("--ip-range %s is in none of network %s's subnets", rng, n.Name)
	}
	free := func(a netip.Addr) bool {
		if used[a] || a == sub.Gateway || a == sub.CIDR.Masked().Addr() || a == lastOf(sub.CIDR) || !rng.Contains(a) {
			return false
		}
		if len(sub.Pools) == 0 {
			return true
		}
		for _, pr := range sub.Pools {
			if pr.Contains(a) {
				return true
			}
		}
		return false
	}
	return pickFree(rng, free)
}

// pickFree returns an address of rng that ok accepts: from a random point on, walking
// the range (a small one whole; a large one, such as an IPv6 /64, at random).
func pickFree(rng netip.Prefix, ok func(netip.Addr) bool) (netip.Addr, error) {
	hostBits := rng.Addr().BitLen() - rng.Bits()
	size := new(big.Int).Lsh(big.NewInt(1), uint(hostBits))
	base := new(big.Int).SetBytes(rng.Masked().Addr().AsSlice())
	at := func(off *big.Int) netip.Addr {
		v := new(big.Int).Add(base, off).FillBytes(make([]byte, rng.Addr().BitLen()/8))
		a, _ := netip.AddrFromSlice(v)
		return a
	}
	start, err := rand.Int(rand.Reader, size)
	if err != nil {
		return netip.Addr{}, err
	}
	if hostBits <= 16 {
		n := size.Int64()
		for i := int64(0); i < n; i++ {
			off := big.NewInt((start.Int64() + i) % n)
			if a := at(off); ok(a) {
				return a, nil
			}
		}
		return netip.Addr{}, fmt.Errorf("no free address left in --ip-range %s (within the subnet's allocation pools)", rng)
	}
	for i := 0; i < 1000; i++ {
		off, err := rand.Int(rand.Reader, size)
		if err != nil {
			return netip.Addr{}, err
		}
		if a := at(off); ok(a) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address found in --ip-range %s", rng)
}

func subnetOf(n *neutron.Network, a netip.Addr) (neutron.Subnet, bool) {
	for _, s := range n.Subnets {
		if s.CIDR.Contains(a) {
			return s, true
		}
	}
	return neutron.Subnet{}, false
}

// lastOf is the last address of a prefix (IPv4's broadcast address).
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// prepareFixed makes the IPAM pool a port with address ip (the cold path: no pool's
// interface has it). A taken address is Neutron's refusal, in one line.
func (p *Plugin) prepareFixed(ctx context.Context, pool *state.DockerPool, sgs []string, port neutron.PortOptions, ip netip.Addr) (*state.Attachment, error) {
	n, err := p.nets.network(ctx, pool.NeutronNetwork)
	if err != nil {
		return nil, err
	}
	return p.cfg.Engine.Prepare(ctx, engine.Request{Owner: ipamOwner(pool.ID), OwnerKind: state.OwnerEndpoint, Network: n, AtRest: true,
		SecurityGroups: sgs, IPAMPool: pool.ID, FixedIPs: []netip.Addr{ip}, Port: port})
}

// rangeAddress makes the IPAM pool a port with a free address of its --ip-range; an
// address another VM takes meanwhile is tried again with another.
func (p *Plugin) rangeAddress(ctx context.Context, pool *state.DockerPool, sgs []string, port neutron.PortOptions) (*state.Attachment, error) {
	rng, err := netip.ParsePrefix(pool.Range)
	if err != nil {
		return nil, fmt.Errorf("pool %s: --ip-range %q: %w", pool.ID, pool.Range, err)
	}
	n, err := p.nets.network(ctx, pool.NeutronNetwork)
	if err != nil {
		return nil, err
	}
	for try := 1; ; try++ {
		ip, err := p.freeIn(ctx, n, rng)
		if err != nil {
			return nil, err
		}
		att, err := p.prepareFixed(ctx, pool, sgs, port, ip)
		if err == nil || !errors.Is(err, neutron.ErrAddressInUse) || try == rangeTries {
			return att, err
		}
	}
}
