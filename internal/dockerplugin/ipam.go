package dockerplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// adoption names an existing Neutron network or subnet, from options.
type adoption struct {
	netName, netID, subnetName, subnetID string
	secGroups                            []string // not an adoption: the ports' security groups
}

func (a adoption) any() bool {
	return a.netName != "" || a.netID != "" || a.subnetName != "" || a.subnetID != ""
}

// network is the option naming the network, as given.
func (a adoption) network() (key, value string) {
	if a.netID != "" {
		return OptNetID, a.netID
	}
	return OptNetName, a.netName
}

// parseAdoption reads the neutron.* options. Unknown neutron.* keys are refused, so that
// a typo does not silently create a new network; the IPAM also takes the subnet keys.
func parseAdoption(opts map[string]string, subnets bool) (adoption, error) {
	var a adoption
	for k, v := range opts {
		if !strings.HasPrefix(k, "neutron.") {
			continue
		}
		switch {
		case k == OptNetName:
			a.netName = v
		case k == OptNetID:
			a.netID = v
		case k == OptSubnetName && subnets:
			a.subnetName = v
		case k == OptSubnetID && subnets:
			a.subnetID = v
		case k == OptSubnetName || k == OptSubnetID:
			return a, fmt.Errorf("option %s belongs to the IPAM driver: give it with --ipam-opt", k)
		case k == OptSecurityGroups && !subnets:
			for _, g := range strings.Split(v, ",") {
				if g = strings.TrimSpace(g); g != "" {
					a.secGroups = append(a.secGroups, g)
				}
			}
		case k == OptSecurityGroups:
			return a, fmt.Errorf("option %s belongs to the network driver: give it with -o", k)
		default:
			known := []string{OptNetName, OptNetID}
			if !subnets {
				known = append(known, OptSecurityGroups)
			}
			if subnets {
				known = append(known, OptSubnetName, OptSubnetID)
			}
			return a, fmt.Errorf("unknown option %s (known: %s)", k, strings.Join(known, ", "))
		}
		if v == "" {
			return a, fmt.Errorf("option %s is empty", k)
		}
	}
	if a.netName != "" && a.netID != "" {
		return a, fmt.Errorf("give %s or %s, not both", OptNetName, OptNetID)
	}
	if a.subnetName != "" && a.subnetID != "" {
		return a, fmt.Errorf("give %s or %s, not both", OptSubnetName, OptSubnetID)
	}
	return a, nil
}

func ipamOwner(poolID string) string { return "ipam:" + poolID }

func (p *Plugin) requestPool(ctx context.Context, r *requestPoolRequest) (_ any, err error) {
	if r.V6 {
		return p.requestPool6(ctx, r)
	}
	adopt, err := parseAdoption(r.Options, true)
	if err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	pool := &state.DockerPool{ID: id, Requested: p.cfg.Now().UTC()}
	var created *neutron.Network
	switch {
	case adopt.any():
		n, sub, err := p.resolveSubnet(ctx, adopt, r.Pool, 4)
		if err != nil {
			return nil, err
		}
		adoptSubnet(pool, n, sub)
	case r.Pool != "":
		pfx, err := netip.ParsePrefix(r.Pool)
		if err != nil || !pfx.Addr().Is4() || pfx.Masked() != pfx {
			return nil, fmt.Errorf("subnet %q is not an IPv4 network in CIDR notation", r.Pool)
		}
		// The Neutron network is made with the driver's CreateNetwork, once the gateway
		// is known too.
		pool.CIDR = pfx.String()
	default:
		// Only Neutron can tell a range now (the project's default subnet pool, or a free
		// private /24): the network is made at once, under a name of its own until
		// Docker's name for it is known.
		var note string
		var sub neutron.Subnet
		// err is the function's own: the deferred rollback must see how it ends.
		created, sub, note, err = p.createNeutronNetwork(ctx, neutron.CreateNetworkOpts{Name: "docker-pool-" + id})
		if err != nil {
			return nil, err
		}
		n := created
		defer func() {
			if err != nil {
				p.deleteNeutronNetwork(context.WithoutCancel(ctx), n.ID)
			}
		}()
		pool.CIDR, pool.NeutronNetwork, pool.Subnet, pool.Created = sub.CIDR.String(), n.ID, sub.ID, true
		if sub.Gateway.IsValid() {
			pool.Gateway = sub.Gateway.String()
		}
		p.log.Info("created a Neutron network for a Docker network", "neutron_network", n.ID, "name", n.Name, "range", note)
	}
	// err is the function's own: the deferred rollback must see how it ends.
	var resp any
	resp, err = p.savePool(ctx, pool, r.SubPool)
	return resp, err
}

// adoptSubnet gives pool the Neutron subnet sub of network n.
func adoptSubnet(pool *state.DockerPool, n *neutron.Network, sub neutron.Subnet) {
	pool.CIDR, pool.NeutronNetwork, pool.Subnet = sub.CIDR.String(), n.ID, sub.ID
	if sub.Gateway.IsValid() {
		pool.Gateway = sub.Gateway.String()
	}
}

// savePool records a pool, within subPool (Docker's --ip-range) when given, and answers
// Docker with it.
func (p *Plugin) savePool(ctx context.Context, pool *state.DockerPool, subPool string) (any, error) {
	if subPool != "" {
		var err error
		if pool.Range, err = subRange(subPool, pool.CIDR); err != nil {
			return nil, err
		}
	}
	if err := p.cfg.Engine.EditDockerRecords(ctx, func(d *engine.DockerRecords) error {
		d.Pools[pool.ID] = pool
		return nil
	}); err != nil {
		return nil, err
	}
	p.log.Info("pool", "pool", pool.ID, "cidr", pool.CIDR, "neutron_network", pool.NeutronNetwork, "created", pool.Created, "range", pool.Range, "v6", pool.V6)
	return requestPoolResponse{PoolID: pool.ID, Pool: pool.CIDR, Data: map[string]string{}}, nil
}

// resolveSubnet finds the network that options name and its subnet of the family (4 or
// 6); want, when set, is the CIDR Docker asked for (--subnet), which must be that
// subnet's. A subnet named in the options is the IPv4 pool's: the IPv6 pool takes the
// network's IPv6 subnet.
func (p *Plugin) resolveSubnet(ctx context.Context, a adoption, want string, family int) (*neutron.Network, neutron.Subnet, error) {
	var n *neutron.Network
	var subID string
	var err error
	if a.subnetID != "" || a.subnetName != "" {
		var netID string
		netID, subID, err = p.cfg.Neutron.FindSubnet(ctx, a.subnetID, a.subnetName)
		if err != nil {
			return nil, neutron.Subnet{}, err
		}
		if n, err = p.cfg.Neutron.FindNetwork(ctx, netID); err != nil {
			return nil, neutron.Subnet{}, err
		}
		if _, v := a.network(); v != "" && v != n.ID && v != n.Name {
			return nil, neutron.Subnet{}, fmt.Errorf("subnet %s belongs to network %s (%s), not %s", subID, n.Name, n.ID, v)
		}
	} else {
		_, ref := a.network()
		if n, err = p.cfg.Neutron.FindNetwork(ctx, ref); err != nil {
			return nil, neutron.Subnet{}, err
		}
	}
	if family == 6 {
		subID = ""
	}
	sub, err := familySubnet(n, family, subID, want)
	return n, sub, err
}

// familySubnet is n's subnet of the family: subID's when given, the one of CIDR want when
// given, else the only one.
func familySubnet(n *neutron.Network, family int, subID, want string) (neutron.Subnet, error) {
	var cands []neutron.Subnet
	for _, s := range n.Subnets {
		if s.IPVersion == family && (subID == "" || s.ID == subID) {
			cands = append(cands, s)
		}
	}
	if want != "" {
		var match []neutron.Subnet
		for _, s := range cands {
			if s.CIDR.String() == want {
				match = append(match, s)
			}
		}
		if len(match) == 0 {
			if len(cands) == 0 {
				return neutron.Subnet{}, fmt.Errorf("neutron network %s has no IPv%d subnet %s", n.Name, family, want)
			}
			return neutron.Subnet{}, fmt.Errorf("neutron network %s has no IPv%d subnet %s (it has %s)", n.Name, family, want, strings.Join(cidrsOf(cands), ", "))
		}
		cands = match
	}
	switch {
	case len(cands) == 1:
		return cands[0], nil
	case len(cands) == 0 && family == 6:
		return neutron.Subnet{}, fmt.Errorf("neutron network %s (%s) has no IPv6 subnet: create the Docker network without --ipv6", n.Name, n.ID)
	case len(cands) == 0:
		return neutron.Subnet{}, fmt.Errorf("neutron network %s (%s) has no IPv4 subnet", n.Name, n.ID)
	case family == 6:
		return neutron.Subnet{}, fmt.Errorf("neutron network %s has %d IPv6 subnets (%s): choose one with --subnet", n.Name, len(cands), strings.Join(cidrsOf(cands), ", "))
	}
	return neutron.Subnet{}, fmt.Errorf("neutron network %s has %d IPv4 subnets (%s): choose one with --ipam-opt %s=ID or --subnet",
		n.Name, len(cands), strings.Join(cidrsOf(cands), ", "), OptSubnetID)
}

func cidrsOf(subs []neutron.Subnet) []string {
	out := make([]string, 0, len(subs))
	for _, s := range subs {
		out = append(out, s.CIDR.String())
	}
	sort.Strings(out)
	return out
}

// createNeutronNetwork makes a Neutron network for a Docker network and returns it with
// its IPv4 subnet. A network made without one is deleted again; once it returns, undoing
// it is the caller's.
func (p *Plugin) createNeutronNetwork(ctx context.Context, o neutron.CreateNetworkOpts) (*neutron.Network, neutron.Subnet, string, error) {
	n, note, err := p.cfg.Neutron.CreateNetwork(ctx, o)
	if err != nil {
		return nil, neutron.Subnet{}, "", err
	}
	sub, ok := firstIPv4(n)
	if !ok {
		p.deleteNeutronNetwork(context.WithoutCancel(ctx), n.ID)
		return nil, neutron.Subnet{}, "", fmt.Errorf("neutron network %s was made without an IPv4 subnet", n.ID)
	}
	return n, sub, note, nil
}

func firstIPv4(n *neutron.Network) (neutron.Subnet, bool) {
	for _, s := range n.Subnets {
		if s.IPVersion == 4 {
			return s, true
		}
	}
	return neutron.Subnet{}, false
}

func (p *Plugin) pool(ctx context.Context, id string) (*state.DockerPool, error) {
	d, err := p.cfg.Engine.DockerRecords(ctx)
	if err != nil {
		return nil, err
	}
	return d.Pools[id], nil
}

func (p *Plugin) releasePool(ctx context.Context, r *releasePoolRequest) (any, error) {
	defer p.locks.lock(poolKey(r.PoolID))()
	pool, err := p.pool(ctx, r.PoolID)
	if err != nil || pool == nil {
		return struct{}{}, err
	}
	if err := p.dropPool(ctx, pool); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// dropPool forgets a pool whose Docker network is gone, with the network record if one
// is left, deleting the Neutron network when ovn-docker made it. Addresses of the pool
// that were never given to an endpoint are released first.
func (p *Plugin) dropPool(ctx context.Context, pool *state.DockerPool) error {
	// Docker releases a network's IPAM pool before it deletes the network itself: the
	// interfaces kept ready for it go first.
	if recs, err := p.cfg.Engine.DockerRecords(ctx); err == nil {
		for _, n := range recs.Networks {
			if n.Pool == pool.ID {
				if err := p.dropPoolOf(ctx, n); err != nil {
					p.log.Warn("release the network's ready interfaces", "network", n.ID, "err", err)
				}
			}
		}
	}
	if err := p.releaseUnplumbed(ctx, pool); err != nil {
		return err
	}
	if pool.Created && pool.NeutronNetwork != "" {
		if err := p.deleteCreatedNetwork(ctx, pool.NeutronNetwork); err != nil {
			return fmt.Errorf("delete neutron network %s of pool %s: %w", pool.NeutronNetwork, pool.ID, err)
		}
		p.nets.forget(pool.NeutronNetwork)
		p.log.Info("deleted the Neutron network of a pool", "pool", pool.ID, "neutron_network", pool.NeutronNetwork)
	}
	return p.cfg.Engine.EditDockerRecords(ctx, func(d *engine.DockerRecords) error {
		delete(d.Pools, pool.ID)
		for id, n := range d.Networks {
			if n.Pool == pool.ID {
				delete(d.Networks, id)
			}
		}
		return nil
	})
}

// releaseUnplumbed releases the addresses of a pool that no endpoint took.
func (p *Plugin) releaseUnplumbed(ctx context.Context, pool *state.DockerPool) error {
	atts, err := p.cfg.Engine.AttachmentsOf(ctx, ipamOwner(pool.ID))
	if err != nil {
		return err
	}
	for _, a := range atts {
		if a.OwnerKind != state.OwnerEndpoint {
			continue
		}
		if err := p.cfg.Engine.Detach(ctx, a.ID); err != nil {
			return fmt.Errorf("release address of pool %s: %w", pool.ID, err)
		}
	}
	// Ports parked for containers of the network: Docker removes a network only once
	// no container is on it, so those containers are gone. Those being released already
	// (the agent saw their container go) are released here too, and waited for: the
	// Neutron network goes next, and refuses while a port is left. A release done twice
	// is harmless (each step takes what is gone as done).
	for _, kind := range []string{state.OwnerParked, state.OwnerReleasing} {
		atts, err := p.cfg.Engine.AttachmentsOfKind(ctx, kind)
		if err != nil {
			return err
		}
		for _, a := range atts {
			if a.IPAMPool != pool.ID {
				continue
			}
			if err := p.cfg.Engine.Detach(ctx, a.ID); err != nil {
				return fmt.Errorf("release the port of a removed container: %w", err)
			}
		}
	}
	return nil
}

func (p *Plugin) requestAddress(ctx context.Context, r *requestAddressRequest) (any, error) {
	pool, err := p.pool(ctx, r.PoolID)
	if err != nil {
		return nil, err
	}
	if pool == nil {
		return nil, fmt.Errorf("unknown pool %s", r.PoolID)
	}
	pfx, err := netip.ParsePrefix(pool.CIDR)
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", pool.ID, err)
	}
	if r.Options[optAddressType] == addressGateway {
		return p.gatewayAddress(ctx, pool, pfx, r.Address)
	}
	if pool.Network == "" || pool.NeutronNetwork == "" {
		return nil, fmt.Errorf("pool %s serves no network of the %s driver: the %s IPAM driver works with its own network driver only (docker network create -d %s --ipam-driver %s)",
			pool.ID, p.cfg.Name, p.cfg.Name, p.cfg.Name, p.cfg.Name)
	}
	if pool.V6 {
		return p.requestAddress6(ctx, pool, pfx, r.Address)
	}
	if r.Address != "" {
		return p.reservedAddress(ctx, pool, pfx, r.Address)
	}
	var sgs []string
	var port neutron.PortOptions
	if d, err := p.cfg.Engine.DockerRecords(ctx); err == nil {
		if dn := d.Networks[pool.Network]; dn != nil {
			sgs = dn.SecurityGroups
			if port, err = portOptionsOf(dn); err != nil {
				return nil, err
			}
		}
	}
	var att *state.Attachment
	if pool.Range != "" {
		// No ready interface has an address picked for the range: the cold path.
		if att, err = p.rangeAddress(ctx, pool, sgs, port); err != nil {
			return nil, err
		}
	} else if att, err = p.readyAddress(ctx, pool, sgs, port); err != nil {
		return nil, err
	}
	if att == nil {
		// Cold: only now is the network itself needed (its subnets, for the port).
		n, err := p.nets.network(ctx, pool.NeutronNetwork)
		if err != nil {
			return nil, err
		}
		att, err = p.cfg.Engine.Prepare(ctx, engine.Request{Owner: ipamOwner(pool.ID), OwnerKind: state.OwnerEndpoint, Network: n, AtRest: true,
			SecurityGroups: sgs, IPAMPool: pool.ID, Port: port})
		if err != nil {
			return nil, err
		}
	}
	addr, ok := addressIn(att.IPs, pfx)
	if !ok {
		if derr := p.cfg.Engine.Detach(context.WithoutCancel(ctx), att.ID); derr != nil {
			p.log.Error("release of an unusable port failed", "attachment", att.ID, "err", derr)
		}
		return nil, fmt.Errorf("neutron gave port %s the addresses %v, none in the pool's subnet %s (the network has several IPv4 subnets?)",
			att.PortID, att.IPs, pool.CIDR)
	}
	p.log.Info("address", "pool", pool.ID, "address", addr, "attachment", att.ID, "port", att.PortID, "vlan", att.VLAN)
	return requestAddressResponse{Address: addr.String(), Data: map[string]string{}}, nil
}

// gatewayAddress answers Docker's request for the network's gateway: the subnet's, which
// needs no port (OVN's router, when there is one, answers on it).
func (p *Plugin) gatewayAddress(ctx context.Context, pool *state.DockerPool, pfx netip.Prefix, want string) (any, error) {
	if pool.NeutronNetwork != "" {
		if pool.Gateway == "" {
			return nil, fmt.Errorf("subnet %s of Neutron network %s has no gateway, and Docker needs one: give the subnet a gateway_ip", pool.CIDR, pool.NeutronNetwork)
		}
		if want != "" && want != pool.Gateway {
			return nil, fmt.Errorf("the gateway of subnet %s is %s, not %s: leave out --gateway", pool.CIDR, pool.Gateway, want)
		}
		gw, err := netip.ParseAddr(pool.Gateway)
		if err != nil {
			return nil, fmt.Errorf("pool %s: gateway %q: %w", pool.ID, pool.Gateway, err)
		}
		return requestAddressResponse{Address: netip.PrefixFrom(gw, pfx.Bits()).String(), Data: map[string]string{}}, nil
	}
	// The network is yet to be made: its gateway is the one asked for, or the first host.
	gw := pfx.Addr().Next()
	if want != "" {
		a, err := netip.ParseAddr(want)
		if err != nil || !pfx.Contains(a) || a == pfx.Addr() {
			return nil, fmt.Errorf("gateway %q is not a host address of subnet %s", want, pool.CIDR)
		}
		gw = a
	}
	defer p.locks.lock(poolKey(pool.ID))()
	err := p.cfg.Engine.EditDockerRecords(ctx, func(d *engine.DockerRecords) error {
		pl := d.Pools[pool.ID]
		if pl == nil {
			return fmt.Errorf("pool %s vanished", pool.ID)
		}
		pl.Gateway = gw.String()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return requestAddressResponse{Address: netip.PrefixFrom(gw, pfx.Bits()).String(), Data: map[string]string{}}, nil
}

// addressIn returns the first of ips (CIDR notation) inside pfx, with pfx's length.
func addressIn(ips []string, pfx netip.Prefix) (netip.Prefix, bool) {
	for _, s := range ips {
		a, err := netip.ParsePrefix(s)
		if err == nil && pfx.Contains(a.Addr()) {
			return netip.PrefixFrom(a.Addr(), pfx.Bits()), true
		}
	}
	return netip.Prefix{}, false
}

// hasAddress reports whether an attachment holds ip.
func hasAddress(a *state.Attachment, ip netip.Addr) bool {
	for _, s := range a.IPs {
		if p, err := netip.ParsePrefix(s); err == nil && p.Addr() == ip {
			return true
		}
	}
	return false
}

// parseIP reads an address Docker sends, bare or in CIDR notation.
func parseIP(s string) (netip.Addr, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address %q is not an IP address", s)
	}
	return a, nil
}

// attachmentByAddress finds the plugin's attachment on a Neutron network that holds ip.
func (p *Plugin) attachmentByAddress(ctx context.Context, neutronNet string, ip netip.Addr) (*state.Attachment, error) {
	atts, err := p.cfg.Engine.AttachmentsOn(ctx, neutronNet)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		if a.OwnerKind == state.OwnerEndpoint && hasAddress(a, ip) {
			return a, nil
		}
	}
	return nil, nil
}

func (p *Plugin) releaseAddress(ctx context.Context, r *releaseAddressRequest) (any, error) {
	pool, err := p.pool(ctx, r.PoolID)
	if err != nil || pool == nil || pool.NeutronNetwork == "" {
		return struct{}{}, err
	}
	ip, err := parseIP(r.Address)
	if err != nil {
		return nil, err
	}
	if pool.V6 {
		return p.releaseAddress6(ctx, pool, ip)
	}
	if ip.String() == pool.Gateway {
		return struct{}{}, nil
	}
	defer p.locks.lock(addrKey(pool.NeutronNetwork, ip.String()))()
	att, err := p.attachmentByAddress(ctx, pool.NeutronNetwork, ip)
	if err != nil || att == nil {
		return struct{}{}, err
	}
	if att.Owner != ipamOwner(pool.ID) || att.PID != 0 || !plumbed(att) {
		// Not at rest with the IPAM (an endpoint that kept it, a call in progress, or
		// never plumbed): released here and now, as before.
		if err := p.cfg.Engine.Detach(ctx, att.ID); err != nil {
			return nil, fmt.Errorf("release %s: %w", ip, err)
		}
		p.log.Info("released address", "pool", pool.ID, "address", ip, "attachment", att.ID, "port", att.PortID)
		return struct{}{}, nil
	}
	if err := p.giveUp(ctx, att, pool.ID); err != nil {
		return nil, fmt.Errorf("release %s: %w", ip, err)
	}
	return struct{}{}, nil
}

func (p *Plugin) deleteNeutronNetwork(ctx context.Context, id string) {
	if err := p.deleteCreatedNetwork(ctx, id); err != nil {
		p.log.Error("rollback: delete neutron network failed", "neutron_network", id, "err", err)
	}
}

// deleteCreatedNetwork deletes a Neutron network the plugin made; one already gone is
// fine. When Neutron says ports remain, this VM's ports on it that no attachment records
// go (see engine.DeleteOrphanPorts) and the network is deleted again: the port of a
// daemon killed while Neutron was making it must not keep the network. Ports of
// containers, in this VM or others, still keep it.
func (p *Plugin) deleteCreatedNetwork(ctx context.Context, id string) error {
	err := p.cfg.Neutron.DeleteNetwork(ctx, id)
	if errors.Is(err, neutron.ErrNetworkInUse) {
		n, oerr := p.cfg.Engine.DeleteOrphanPorts(ctx, id)
		if oerr != nil {
			p.log.Warn("delete orphaned ports of a network in use", "neutron_network", id, "err", oerr)
		}
		if n > 0 {
			err = p.cfg.Neutron.DeleteNetwork(ctx, id)
		}
	}
	if errors.Is(err, neutron.ErrNotFound) {
		return nil
	}
	return err
}
