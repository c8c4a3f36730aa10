package dockerplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// The warm path of Docker's own commands. A container's start and end go through
// RequestAddress, CreateEndpoint, Join and, at its end, Leave, DeleteEndpoint and
// ReleaseAddress, one after the other, each waited for by docker run. With an interface
// ready (a pool's, a stopped container's parked one, or one the agent's run reserved)
// each of these is one hand-over in the state: no Neutron call, no netlink, no OVSDB.
// What Docker gives up is parked for its container (its removal releases it) or
// released in the background, after a journaled hand-over, so that a crash loses
// nothing (Reconcile finishes it).

// Options of docker network create -o that keep a pool for the network.
const (
	OptPoolMin = "pool.min"
	OptPoolMax = "pool.max"
)

// parsePoolOptions reads -o pool.min=N [-o pool.max=M]; max defaults to twice min.
func parsePoolOptions(opts map[string]string) (min, max int, err error) {
	v, ok := opts[OptPoolMin]
	if !ok {
		if _, ok := opts[OptPoolMax]; ok {
			return 0, 0, fmt.Errorf("option %s needs %s", OptPoolMax, OptPoolMin)
		}
		return 0, 0, nil
	}
	if min, err = strconv.Atoi(v); err != nil || min < 1 || min > 1000 {
		return 0, 0, fmt.Errorf("option %s=%q: want a count from 1 to 1000", OptPoolMin, v)
	}
	max = 2 * min
	if v, ok := opts[OptPoolMax]; ok {
		if max, err = strconv.Atoi(v); err != nil || max < min || max > 4000 {
			return 0, 0, fmt.Errorf("option %s=%q: want a count from %s (%d) to 4000", OptPoolMax, v, OptPoolMin, min)
		}
	}
	return min, max, nil
}

// poolHolder is who holds a Docker network's pool in the agent's pools.
func poolHolder(networkID string) string { return "docker:" + networkID }

// keepPool declares the pool a Docker network asked for with the agent's pools.
func (p *Plugin) keepPool(ctx context.Context, rec *state.DockerNetwork) error {
	if p.cfg.Pools == nil || rec.PoolMin == 0 {
		return nil
	}
	n, err := p.nets.network(ctx, rec.NeutronNetwork)
	if err != nil {
		return err
	}
	_, err = p.cfg.Pools.AddFor(poolHolder(rec.ID), pool.Spec{Network: n, SecurityGroups: rec.SecurityGroups, Min: rec.PoolMin, Max: rec.PoolMax})
	return err
}

// dropPoolOf says a Docker network no longer wants its pool.
func (p *Plugin) dropPoolOf(ctx context.Context, rec *state.DockerNetwork) error {
	if p.cfg.Pools == nil || rec.PoolMin == 0 {
		return nil
	}
	return p.cfg.Pools.RemoveFor(ctx, poolHolder(rec.ID), pool.Key(rec.NeutronNetwork, rec.SecurityGroups))
}

// readyAddress hands the IPAM pool an interface that needs no Neutron call: the port
// parked for a container of this network that Docker starts again, else a pool's ready
// interface. It returns nil when there is none.
func (p *Plugin) readyAddress(ctx context.Context, ipam *state.DockerPool, sgs []string, port neutron.PortOptions) (*state.Attachment, error) {
	to := engine.Holder{Owner: ipamOwner(ipam.ID), Kind: state.OwnerEndpoint}
	if a, err := p.unpark(ctx, ipam, to); a != nil || err != nil {
		return a, err
	}
	if p.cfg.Pools == nil || !port.Empty() { // a pool's ports have Neutron's defaults
		return nil, nil
	}
	return p.cfg.Pools.Reserve(ctx, pool.Key(ipam.NeutronNetwork, sgs), to, func(a *state.Attachment) { a.IPAMPool, a.IPAMPool6 = ipam.ID, "" })
}

// unpark gives back the port of a stopped container of this network that Docker starts
// again: Docker does not tell its IPAM which container asks, so a parked port is taken
// only when it can be no other's: the one parked port of a container that restarts on
// its own (dockerd starting again), else the network's only parked port. Otherwise the
// container gets another port, and its parked one is released once Docker shows which
// container got what (see labelEndpoint).
func (p *Plugin) unpark(ctx context.Context, ipam *state.DockerPool, to engine.Holder) (*state.Attachment, error) {
	parked, err := p.cfg.Engine.AttachmentsOfKind(ctx, state.OwnerParked)
	if err != nil {
		return nil, err
	}
	var mine, restarting []*state.Attachment
	for _, a := range parked {
		if a.IPAMPool == ipam.ID && a.PID == 0 {
			mine = append(mine, a)
			if a.Restarts {
				restarting = append(restarting, a)
			}
		}
	}
	var pick *state.Attachment
	switch {
	case len(restarting) == 1:
		pick = restarting[0]
	case len(restarting) == 0 && len(mine) == 1:
		pick = mine[0]
	case len(mine) > 1:
		p.log.Info("several stopped containers of the network hold their ports: a container that starts gets a new one (give it --ip to keep its address)",
			"pool", ipam.ID, "parked", len(mine))
		return nil, nil
	default:
		return nil, nil
	}
	a, err := p.cfg.Engine.Hand(ctx, pick.ID, engine.Holder{Owner: pick.Owner, Kind: state.OwnerParked}, to,
		func(a *state.Attachment) { a.IPAMPool, a.IPAMPool6 = ipam.ID, "" })
	if errors.Is(err, engine.ErrNotHeld) {
		return nil, nil // another call took it
	}
	if err == nil {
		p.log.Info("a stopped container's port goes to the container that starts", "attachment", a.ID, "container", short(pick.Owner),
			"address", firstIP(a), "port", a.PortID)
	}
	return a, err
}

// reservedAddress hands the IPAM pool the port that holds a fixed address: one the
// agent's run reserved for the container it creates, or one parked for a container
// given that address (--ip), which starts again.
func (p *Plugin) reservedAddress(ctx context.Context, ipam *state.DockerPool, pfx netip.Prefix, want string) (any, error) {
	ip, err := parseIP(want)
	if err != nil {
		return nil, err
	}
	if !pfx.Contains(ip) {
		return nil, fmt.Errorf("address %s is not in the network's subnet %s", ip, pfx)
	}
	defer p.locks.lock(addrKey(ipam.NeutronNetwork, ip.String()))()
	atts, err := p.cfg.Engine.AttachmentsOn(ctx, ipam.NeutronNetwork)
	if err != nil {
		return nil, err
	}
	to := engine.Holder{Owner: ipamOwner(ipam.ID), Kind: state.OwnerEndpoint}
	for _, a := range atts {
		if !hasAddress(a, ip) || a.PID != 0 {
			continue
		}
		switch {
		case a.OwnerKind == state.OwnerReserved,
			a.OwnerKind == state.OwnerParked && (a.IPAMPool == ipam.ID || a.IPAMPool == ""):
			got, err := p.cfg.Engine.Hand(ctx, a.ID, engine.Holder{Owner: a.Owner, Kind: a.OwnerKind}, to,
				func(a *state.Attachment) { a.IPAMPool, a.IPAMPool6 = ipam.ID, "" })
			if err != nil {
				return nil, err
			}
			p.log.Info("address", "pool", ipam.ID, "address", ip, "attachment", got.ID, "port", got.PortID, "was", a.OwnerKind)
			return requestAddressResponse{Address: netip.PrefixFrom(ip, pfx.Bits()).String(), Data: map[string]string{}}, nil
		case a.OwnerKind == state.OwnerEndpoint:
			return nil, fmt.Errorf("address %s is in use by another container of this VM", ip)
		}
	}
	// Not this VM's yet: a port made with exactly that address (--ip).
	var sgs []string
	var port neutron.PortOptions
	if d, err := p.cfg.Engine.DockerRecords(ctx); err == nil {
		if dn := d.Networks[ipam.Network]; dn != nil {
			sgs = dn.SecurityGroups
			if port, err = portOptionsOf(dn); err != nil {
				return nil, err
			}
		}
	}
	att, err := p.prepareFixed(ctx, ipam, sgs, port, ip)
	if err != nil {
		return nil, err
	}
	p.log.Info("address", "pool", ipam.ID, "address", ip, "attachment", att.ID, "port", att.PortID, "fixed", true)
	return requestAddressResponse{Address: netip.PrefixFrom(ip, pfx.Bits()).String(), Data: map[string]string{}}, nil
}

// giveUp takes an attachment Docker released (its address, after its endpoint): parked
// for its container when the plugin knows it (the container may start again; its
// removal releases it), else released in the background.
func (p *Plugin) giveUp(ctx context.Context, a *state.Attachment, ipamPoolID string) error {
	from := engine.Holder{Owner: a.Owner, Kind: a.OwnerKind}
	if a.Container != "" {
		_, err := p.cfg.Engine.Hand(ctx, a.ID, from, engine.Holder{Owner: a.Container, Kind: state.OwnerParked},
			func(x *state.Attachment) { x.IPAMPool = ipamPoolID })
		if err != nil {
			return err
		}
		p.log.Info("parked a stopped container's port", "attachment", a.ID, "container", short(a.Container), "port", a.PortID)
		// Docker releases an address alike when the container stops and when it is
		// disconnected from the network while it runs. Which one it was is asked of
		// Docker once this call has returned: Docker holds the container while it stops.
		id, container, netID := a.ID, a.Container, p.networkOfPool(ctx, ipamPoolID)
		p.background(func(ctx context.Context) { p.checkParked(ctx, id, container, netID) })
		return nil
	}
	if _, err := p.cfg.Engine.Hand(ctx, a.ID, from, engine.Holder{Owner: a.ID, Kind: state.OwnerReleasing}, nil); err != nil {
		return err
	}
	id := a.ID
	p.background(func(ctx context.Context) { p.release(ctx, id) })
	return nil
}

// checkParked releases a parked port at once when its container runs without the
// network (it was disconnected, not stopped) or is gone; a stopped container keeps it.
func (p *Plugin) checkParked(ctx context.Context, attID, container, networkID string) {
	info, err := p.cfg.Docker.Inspect(ctx, container)
	switch {
	case errors.Is(err, docker.ErrNotFound):
	case err != nil:
		p.log.Debug("check a parked port's container", "attachment", attID, "err", err)
		return // kept; reconciliation looks again
	case !info.Running || networkID == "" || slices.Contains(info.Networks, networkID):
		return // stopped (or started again on the network): kept for it
	}
	a, err := p.cfg.Engine.Hand(ctx, attID, engine.Holder{Owner: container, Kind: state.OwnerParked},
		engine.Holder{Owner: attID, Kind: state.OwnerReleasing}, nil)
	if err != nil {
		return // taken meanwhile: started again
	}
	p.log.Info("the container left the network: releasing its port", "attachment", attID, "container", short(container), "port", a.PortID)
	p.release(ctx, attID)
}

// networkOfPool is the Docker network an IPAM pool serves ("" when none).
func (p *Plugin) networkOfPool(ctx context.Context, poolID string) string {
	recs, err := p.cfg.Engine.DockerRecords(ctx)
	if err != nil || recs.Pools[poolID] == nil {
		return ""
	}
	return recs.Pools[poolID].Network
}

// release gives up an attachment that Docker no longer wants (in the background).
func (p *Plugin) release(ctx context.Context, id string) {
	if err := p.cfg.Release(ctx, id); err != nil {
		p.log.Warn("release of a port Docker gave up failed; the next reconciliation tries again", "attachment", id, "err", err)
		return
	}
	p.log.Debug("released", "attachment", id)
}

// ReleaseParked releases the ports parked for a container that is gone (its removal):
// the agent calls it when Docker says so.
func (p *Plugin) ReleaseParked(ctx context.Context, container string) error {
	atts, err := p.cfg.Engine.TakeParked(ctx, container)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range atts {
		if err := p.cfg.Release(ctx, a.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		p.log.Info("released the port of a removed container", "attachment", a.ID, "container", short(container), "port", a.PortID)
	}
	return errors.Join(errs...)
}

// reconcileParked releases what waits for a container that Docker no longer has, and
// finishes releases a crash interrupted.
func (p *Plugin) reconcileParked(ctx context.Context) error {
	var errs []error
	releasing, err := p.cfg.Engine.AttachmentsOfKind(ctx, state.OwnerReleasing)
	if err != nil {
		return err
	}
	for _, a := range releasing {
		if a.PID == 0 {
			p.release(ctx, a.ID)
		}
	}
	// A port the agent's run reserved is taken by Docker within the run's seconds; one
	// still reserved a grace period later belongs to a run that died with its agent.
	reserved, err := p.cfg.Engine.AttachmentsOfKind(ctx, state.OwnerReserved)
	if err != nil {
		return err
	}
	for _, a := range reserved {
		if a.PID == 0 && p.cfg.Now().Sub(a.Updated) >= p.cfg.Grace {
			if _, err := p.cfg.Engine.Hand(ctx, a.ID, engine.Holder{Owner: a.Owner, Kind: state.OwnerReserved},
				engine.Holder{Owner: a.ID, Kind: state.OwnerReleasing}, nil); err == nil {
				p.log.Info("releasing a port reserved for a run that ended", "attachment", a.ID, "run", a.Owner, "port", a.PortID)
				p.release(ctx, a.ID)
			}
		}
	}
	parked, err := p.cfg.Engine.AttachmentsOfKind(ctx, state.OwnerParked)
	if err != nil {
		return err
	}
	gone := map[string]bool{}
	for _, a := range parked {
		if _, seen := gone[a.Owner]; !seen {
			_, err := p.cfg.Docker.Inspect(ctx, a.Owner)
			switch {
			case errors.Is(err, docker.ErrNotFound):
				gone[a.Owner] = true
			case err != nil:
				errs = append(errs, err)
				continue
			default:
				gone[a.Owner] = false
			}
		}
		if gone[a.Owner] {
			errs = append(errs, p.ReleaseParked(ctx, a.Owner))
		}
	}
	return errors.Join(errs...)
}

// ipamPoolOf is the Docker IPAM pool that handed out an attachment's address.
func ipamPoolOf(a *state.Attachment) string {
	if a.IPAMPool != "" {
		return a.IPAMPool
	}
	if id, ok := strings.CutPrefix(a.Owner, "ipam:"); ok {
		return id
	}
	return ""
}

// restarts says whether a container's restart policy makes Docker start it again by
// itself (on dockerd's start, say).
func restarts(policy string) bool {
	switch strings.ToLower(policy) {
	case "always", "unless-stopped", "on-failure":
		return true
	}
	return false
}
