package dockerplugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// TagDockerNetwork starts the tag that names the Docker network on a Neutron network the
// plugin made for it.
const TagDockerNetwork = "ovn-docker-docker-network="

// driverOptions returns the -o options of docker network create.
func driverOptions(opts map[string]any) (map[string]string, error) {
	raw, ok := opts[optGeneric]
	if !ok || raw == nil {
		return nil, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("malformed request: %s is a %T", optGeneric, raw)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		out[k] = s
	}
	return out, nil
}

func (p *Plugin) createNetwork(ctx context.Context, r *createNetworkRequest) (_ any, err error) {
	if r.NetworkID == "" {
		return nil, errors.New("no network ID")
	}
	if len(r.IPv6Data) > 1 {
		return nil, errors.New("one IPv6 subnet per network: give at most one IPv6 --subnet")
	}
	switch len(r.IPv4Data) {
	case 0:
		return nil, fmt.Errorf("no IPv4 pool: create the network with --ipam-driver %s", p.cfg.Name)
	case 1:
	default:
		return nil, errors.New("one IPv4 subnet per network: give at most one --subnet")
	}
	d := r.IPv4Data[0]
	if d.AddressSpace != LocalAddressSpace && d.AddressSpace != GlobalAddressSpace {
		return nil, fmt.Errorf("the addresses would come from another IPAM driver (address space %q), but Neutron must allocate them: create the network with --ipam-driver %s",
			d.AddressSpace, p.cfg.Name)
	}
	gw, err := parseIP(d.Gateway)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	opts, err := driverOptions(r.Options)
	if err != nil {
		return nil, err
	}
	opts, popts, err := takePortOptions(opts)
	if err != nil {
		return nil, err
	}
	adopt, err := parseAdoption(opts, false)
	if err != nil {
		return nil, err
	}
	poolMin, poolMax, err := parsePoolOptions(opts)
	if err != nil {
		return nil, err
	}
	if poolMin > 0 && p.cfg.Pools == nil {
		return nil, fmt.Errorf("option %s: this plugin keeps no pools", OptPoolMin)
	}
	sgs, err := p.cfg.Neutron.SecurityGroupIDs(ctx, adopt.secGroups)
	if err != nil {
		return nil, err
	}
	if err := checkPortOptions(popts, sgs, poolMin); err != nil {
		return nil, err
	}
	var qos string
	if popts.qos != "" {
		if qos, err = p.cfg.Neutron.QoSPolicyID(ctx, popts.qos); err != nil {
			return nil, err
		}
	}

	defer p.locks.lock(netKey(r.NetworkID))()
	recs, err := p.cfg.Engine.DockerRecords(ctx)
	if err != nil {
		return nil, err
	}
	if recs.Networks[r.NetworkID] != nil {
		return struct{}{}, nil // a repeat of a call whose answer was lost
	}
	// Docker does not say which pool: the one its IPAM call just made for this range and
	// gateway, not yet taken by a network.
	var pool *state.DockerPool
	for _, pl := range recs.Pools {
		if pl.Network == "" && pl.CIDR == d.Pool && pl.Gateway == gw.String() &&
			(pool == nil || pl.Requested.After(pool.Requested)) {
			pool = pl
		}
	}
	if pool == nil {
		return nil, fmt.Errorf("no pool %s with gateway %s from the %s IPAM driver: create the network with --ipam-driver %s", d.Pool, gw, p.cfg.Name, p.cfg.Name)
	}
	defer p.locks.lock(poolKey(pool.ID))()
	var pool6 *state.DockerPool
	if len(r.IPv6Data) == 1 {
		if pool6, err = pool6For(recs, r.IPv6Data[0]); err != nil {
			return nil, err
		}
		defer p.locks.lock(poolKey(pool6.ID))()
	}

	var made *neutron.Network
	switch {
	case adopt.any():
		key, ref := adopt.network()
		n, err := p.cfg.Neutron.FindNetwork(ctx, ref)
		if err != nil {
			return nil, err
		}
		if pool.NeutronNetwork != "" {
			if pool.NeutronNetwork != n.ID {
				return nil, fmt.Errorf("-o %s=%s names Neutron network %s, but the IPAM's pool %s is on network %s: give the IPAM the same option (--ipam-opt %s=%s)",
					key, ref, n.ID, pool.CIDR, pool.NeutronNetwork, key, ref)
			}
			break
		}
		sub, err := subnetFor(n, pool)
		if err != nil {
			return nil, err
		}
		pool.NeutronNetwork, pool.Subnet = n.ID, sub.ID
	case pool.NeutronNetwork == "":
		pfx, perr := netip.ParsePrefix(pool.CIDR)
		if perr != nil {
			return nil, fmt.Errorf("pool %s: %w", pool.ID, perr)
		}
		var note string
		var sub neutron.Subnet
		// err is the function's own: the deferred rollback must see how it ends.
		o := neutron.CreateNetworkOpts{Name: "docker-" + short(r.NetworkID), Subnet: pfx, Gateway: gw}
		if pool6 != nil {
			if o.IPv6, o.Gateway6, err = ipv6For(pool6); err != nil {
				return nil, err
			}
			o.IPv6AddressMode, o.IPv6RAMode = ipv6Modes(opts)
		} else if a, ra := ipv6Modes(opts); a != "" || ra != "" {
			return nil, fmt.Errorf("options %s and %s need an IPv6 network (docker network create --ipv6 --subnet IPV6-PREFIX)", OptIPv6AddressMode, OptIPv6RAMode)
		}
		made, sub, note, err = p.createNeutronNetwork(ctx, o)
		if err != nil {
			return nil, err
		}
		n := made
		defer func() {
			if err != nil {
				p.deleteNeutronNetwork(context.WithoutCancel(ctx), n.ID)
			}
		}()
		pool.NeutronNetwork, pool.Subnet, pool.Created = n.ID, sub.ID, true
		p.log.Info("created a Neutron network for a Docker network", "network", r.NetworkID, "neutron_network", n.ID, "range", note)
	}
	if pool6 != nil {
		if err := p.bindPool6(ctx, pool6, pool.NeutronNetwork); err != nil {
			return nil, err
		}
	}
	rec := &state.DockerNetwork{ID: r.NetworkID, Pool: pool.ID, NeutronNetwork: pool.NeutronNetwork, SecurityGroups: sgs,
		Created: p.cfg.Now().UTC(), PoolMin: poolMin, PoolMax: poolMax,
		AllowedAddresses: popts.allowed, QoSPolicy: qos, NoPortSecurity: popts.noPortSecurity}
	if pool6 != nil {
		rec.Pool6 = pool6.ID
	}
	err = p.cfg.Engine.EditDockerRecords(ctx, func(d *engine.DockerRecords) error {
		pl := d.Pools[pool.ID]
		if pl == nil || pl.Network != "" {
			return fmt.Errorf("pool %s was released or taken meanwhile", pool.ID)
		}
		pl.NeutronNetwork, pl.Subnet, pl.Created, pl.Network = pool.NeutronNetwork, pool.Subnet, pool.Created, r.NetworkID
		if pool6 != nil {
			p6 := d.Pools[pool6.ID]
			if p6 == nil || p6.Network != "" {
				return fmt.Errorf("IPv6 pool %s was released or taken meanwhile", pool6.ID)
			}
			p6.NeutronNetwork, p6.Subnet, p6.Network = pool6.NeutronNetwork, pool6.Subnet, r.NetworkID
		}
		d.Networks[r.NetworkID] = rec
		return nil
	})
	if err != nil {
		return nil, err
	}
	if pool.Created {
		tags := []string{neutron.Tag, TagDockerNetwork + r.NetworkID}
		if err := p.cfg.Neutron.TagNetwork(ctx, pool.NeutronNetwork, tags); err != nil {
			p.log.Warn("could not tag the Neutron network with the Docker network", "neutron_network", pool.NeutronNetwork, "err", err)
		}
	}
	if err := p.keepPool(ctx, rec); err != nil {
		p.log.Warn("the network's pool of ready interfaces could not be declared: its containers take the cold path", "network", r.NetworkID, "err", err)
	}
	p.log.Info("network", "network", r.NetworkID, "pool", pool.ID, "neutron_network", pool.NeutronNetwork, "created", pool.Created, "new", made != nil,
		"pool_min", poolMin, "pool_max", poolMax)
	p.background(func(ctx context.Context) { p.learnName(ctx, r.NetworkID) })
	return struct{}{}, nil
}

// subnetFor finds the subnet of n that a CIDR-only pool describes.
func subnetFor(n *neutron.Network, pool *state.DockerPool) (neutron.Subnet, error) {
	for _, s := range n.Subnets {
		if s.IPVersion != 4 || s.CIDR.String() != pool.CIDR {
			continue
		}
		if !s.Gateway.IsValid() || s.Gateway.String() != pool.Gateway {
			return neutron.Subnet{}, fmt.Errorf("subnet %s of Neutron network %s has gateway %v, not %s: give the same gateway, or adopt on the IPAM side too (--ipam-opt)",
				pool.CIDR, n.Name, s.Gateway, pool.Gateway)
		}
		return s, nil
	}
	var v4 []neutron.Subnet
	for _, s := range n.Subnets {
		if s.IPVersion == 4 {
			v4 = append(v4, s)
		}
	}
	return neutron.Subnet{}, fmt.Errorf("neutron network %s has no subnet %s (it has %s): give --subnet of one of them, or adopt on the IPAM side too (--ipam-opt %s=%s)",
		n.Name, pool.CIDR, strings.Join(cidrsOf(v4), ", "), OptNetID, n.ID)
}

func (p *Plugin) deleteNetwork(ctx context.Context, r *networkRequest) (any, error) {
	defer p.locks.lock(netKey(r.NetworkID))()
	recs, err := p.cfg.Engine.DockerRecords(ctx)
	if err != nil {
		return struct{}{}, err
	}
	rec := recs.Networks[r.NetworkID]
	if rec == nil {
		return struct{}{}, nil
	}
	if err := p.dropPoolOf(ctx, rec); err != nil {
		p.log.Warn("release the network's ready interfaces", "network", r.NetworkID, "err", err)
	}
	pool := recs.Pools[rec.Pool]
	shared := false
	for id, n := range recs.Networks {
		if id != rec.ID && n.NeutronNetwork == rec.NeutronNetwork {
			shared = true
		}
	}
	if pool != nil {
		defer p.locks.lock(poolKey(pool.ID))()
		if err := p.releaseUnplumbed(ctx, pool); err != nil {
			return nil, err
		}
	}
	deleted := false
	// Another Docker network of this VM on the same Neutron network inherits it instead.
	if pool != nil && pool.Created && pool.NeutronNetwork != "" && !shared {
		if err := p.deleteCreatedNetwork(ctx, pool.NeutronNetwork); err != nil {
			return nil, fmt.Errorf("delete neutron network %s: %w", pool.NeutronNetwork, err)
		}
		p.nets.forget(pool.NeutronNetwork)
		deleted = true
	}
	err = p.cfg.Engine.EditDockerRecords(ctx, func(d *engine.DockerRecords) error {
		delete(d.Networks, r.NetworkID)
		pl := d.Pools[rec.Pool]
		if pl == nil {
			return nil
		}
		if pl.Created && shared {
			for _, n := range d.Networks {
				if other := d.Pools[n.Pool]; n.NeutronNetwork == rec.NeutronNetwork && other != nil {
					other.Created = true
					break
				}
			}
		}
		if p6 := d.Pools[rec.Pool6]; p6 != nil {
			p6.Network, p6.NeutronNetwork, p6.Subnet = "", "", ""
		}
		// The pool stays for Docker's ReleasePool, with nothing left to delete.
		pl.Network, pl.Created = "", false
		if deleted || shared {
			pl.NeutronNetwork, pl.Subnet = "", ""
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.log.Info("network removed", "network", r.NetworkID, "neutron_network", rec.NeutronNetwork, "deleted", deleted)
	return struct{}{}, nil
}

// network returns the record of a Docker network and its pool.
func (p *Plugin) network(ctx context.Context, id string) (*state.DockerNetwork, *state.DockerPool, error) {
	recs, err := p.cfg.Engine.DockerRecords(ctx)
	if err != nil {
		return nil, nil, err
	}
	rec := recs.Networks[id]
	if rec == nil {
		return nil, nil, fmt.Errorf("network %s is not a network of the %s driver in this VM", short(id), p.cfg.Name)
	}
	pool := recs.Pools[rec.Pool]
	if pool == nil {
		return nil, nil, fmt.Errorf("network %s has lost its pool %s", short(id), rec.Pool)
	}
	return rec, pool, nil
}

// attachmentOf finds the attachment an endpoint holds.
func (p *Plugin) attachmentOf(ctx context.Context, endpointID string) (*state.Attachment, error) {
	atts, err := p.cfg.Engine.AttachmentsOf(ctx, endpointID)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		if a.OwnerKind == state.OwnerEndpoint {
			return a, nil
		}
	}
	return nil, nil
}

func plumbed(a *state.Attachment) bool {
	return a.HostIf != "" && (a.Phase == state.PhaseReady || a.Phase == state.PhaseAttached)
}

func (p *Plugin) createEndpoint(ctx context.Context, r *createEndpointRequest) (any, error) {
	if r.EndpointID == "" {
		return nil, errors.New("no endpoint ID")
	}
	rec, _, err := p.network(ctx, r.NetworkID)
	if err != nil {
		return nil, err
	}
	if r.Interface == nil || r.Interface.Address == "" {
		return nil, fmt.Errorf("no IPv4 address for the endpoint: the network needs the %s IPAM driver", p.cfg.Name)
	}
	ip, err := parseIP(r.Interface.Address)
	if err != nil {
		return nil, err
	}
	defer p.locks.lock(addrKey(rec.NeutronNetwork, ip.String()), epKey(r.EndpointID))()
	att, err := p.attachmentByAddress(ctx, rec.NeutronNetwork, ip)
	if err != nil {
		return nil, err
	}
	if att == nil {
		return nil, fmt.Errorf("address %s was not handed out by the %s IPAM driver", ip, p.cfg.Name)
	}
	if att.Owner == r.EndpointID && plumbed(att) {
		return createEndpointResponse{}, nil // a repeat of a call whose answer was lost
	}
	if !strings.HasPrefix(att.Owner, "ipam:") && att.Owner != r.EndpointID {
		return nil, fmt.Errorf("address %s belongs to endpoint %s", ip, short(att.Owner))
	}
	if err := samePort6(att, r.Interface.AddressIPv6); err != nil {
		return nil, err
	}
	if mac := r.Interface.MacAddress; mac != "" && !sameMAC(mac, att.MAC) {
		return nil, fmt.Errorf("MAC %s was asked for, but the port's MAC is Neutron's %s and port security drops any other: leave out --mac-address",
			mac, att.MAC)
	}
	if plumbed(att) && att.PID == 0 && att.Owner != r.EndpointID {
		// Warm: made ready before (a pool's, a parked one, or one the agent's run
		// reserved): it changes hands, and Join checks its pair is whole.
		att, err = p.cfg.Engine.Hand(ctx, att.ID, engine.Holder{Owner: att.Owner, Kind: att.OwnerKind},
			engine.Holder{Owner: r.EndpointID, Kind: state.OwnerEndpoint}, nil)
		if err != nil {
			return nil, err
		}
		p.log.Info("endpoint", "endpoint", short(r.EndpointID), "network", short(r.NetworkID), "address", ip, "attachment", att.ID,
			"vlan", att.VLAN, "veth", att.HostIf, "warm", true)
		return createEndpointResponse{}, nil
	}
	// The container end stays in the VM, with Neutron's MAC and MTU: Docker moves it into
	// the container at Join and gives it the address.
	att, err = p.cfg.Engine.Plumb(ctx, att.ID, engine.Request{Owner: r.EndpointID, OwnerKind: state.OwnerEndpoint})
	if err != nil {
		return nil, err
	}
	p.log.Info("endpoint", "endpoint", short(r.EndpointID), "network", short(r.NetworkID), "address", ip, "attachment", att.ID,
		"vlan", att.VLAN, "veth", att.HostIf)
	return createEndpointResponse{}, nil
}

func sameMAC(a, b string) bool {
	x, err1 := net.ParseMAC(a)
	y, err2 := net.ParseMAC(b)
	return err1 == nil && err2 == nil && x.String() == y.String()
}

func (p *Plugin) endpointInfo(ctx context.Context, r *endpointRequest) (any, error) {
	att, err := p.attachmentOf(ctx, r.EndpointID)
	if err != nil {
		return nil, err
	}
	v := map[string]any{}
	if att != nil {
		v["neutron_port"], v["neutron_network"], v["vlan"], v["mac"], v["veth"] = att.PortID, att.NetworkID, att.VLAN, att.MAC, att.HostIf
	}
	return endpointInfoResponse{Value: v}, nil
}

func (p *Plugin) deleteEndpoint(ctx context.Context, r *endpointRequest) (any, error) {
	defer p.locks.lock(epKey(r.EndpointID))()
	att, err := p.attachmentOf(ctx, r.EndpointID)
	if err != nil || att == nil {
		return struct{}{}, err
	}
	if att.HostIf == "" && att.Phase == state.PhasePrepared {
		return struct{}{}, nil
	}
	if ipam := ipamPoolOf(att); ipam != "" && plumbed(att) && att.PID == 0 {
		// Docker took the container end back (the kernel dropped its addresses on the
		// way): the pair stays whole for the port's next use, and the IPAM, which
		// releases the address next, decides what becomes of it.
		if _, err := p.cfg.Engine.Hand(ctx, att.ID, engine.Holder{Owner: att.Owner, Kind: state.OwnerEndpoint},
			engine.Holder{Owner: ipamOwner(ipam), Kind: state.OwnerEndpoint}, nil); err != nil {
			return nil, err
		}
		p.log.Info("endpoint removed", "endpoint", short(r.EndpointID), "attachment", att.ID, "veth", att.HostIf, "kept", true)
		return struct{}{}, nil
	}
	if err := p.cfg.Engine.Unplumb(ctx, att.ID); err != nil {
		return nil, err
	}
	p.log.Info("endpoint removed", "endpoint", short(r.EndpointID), "attachment", att.ID, "veth", att.HostIf)
	return struct{}{}, nil
}

func (p *Plugin) join(ctx context.Context, r *joinRequest) (any, error) {
	_, pool, err := p.network(ctx, r.NetworkID)
	if err != nil {
		return nil, err
	}
	defer p.locks.lock(epKey(r.EndpointID))()
	att, err := p.attachmentOf(ctx, r.EndpointID)
	if err != nil {
		return nil, err
	}
	if att == nil {
		return nil, fmt.Errorf("unknown endpoint %s", short(r.EndpointID))
	}
	if att, err = p.ensurePair(ctx, att); err != nil {
		return nil, err
	}
	id, endpoint := att.ID, r.EndpointID
	p.background(func(ctx context.Context) { p.labelEndpoint(ctx, r.NetworkID, endpoint, id) })
	gw, gw6 := pool.Gateway, p.gateway6(ctx, r.NetworkID)
	if att.Secondary {
		gw, gw6 = "", "" // the container's default route is another interface's
	}
	return joinResponse{InterfaceName: &interfaceName{SrcName: att.PeerIf, DstPrefix: "eth"}, Gateway: gw, GatewayIPv6: gw6}, nil
}

// ensurePair makes sure the endpoint's pair is plumbed with its container end in the VM,
// ready for Docker to move: a container that restarted, or a VM that lost the pair,
// finds it again.
func (p *Plugin) ensurePair(ctx context.Context, att *state.Attachment) (*state.Attachment, error) {
	if plumbed(att) {
		host, err := p.cfg.Host.LinkExists(ctx, att.HostIf)
		if err != nil {
			return nil, err
		}
		peer, err := p.cfg.Host.LinkExists(ctx, att.PeerIf)
		if err != nil {
			return nil, err
		}
		if host && peer {
			return att, nil
		}
		p.log.Warn("endpoint's veth pair is gone or in use: making it again", "attachment", att.ID, "veth", att.HostIf, "host_end", host, "container_end", peer)
		if err := p.cfg.Engine.Unplumb(ctx, att.ID); err != nil {
			return nil, err
		}
	}
	return p.cfg.Engine.Plumb(ctx, att.ID, engine.Request{Owner: att.Owner, OwnerKind: state.OwnerEndpoint})
}
