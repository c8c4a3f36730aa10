package dockerplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Start finishes what an interrupted process left, then reconciles with Docker. Call it
// before serving: Docker's retries of calls the previous process did not answer then
// meet a consistent state.
func (p *Plugin) Start(ctx context.Context) error {
	// The pools Docker networks asked for are kept again.
	var errs []error
	if recs, err := p.cfg.Engine.DockerRecords(ctx); err == nil {
		for _, n := range recs.Networks {
			if err := p.keepPool(ctx, n); err != nil {
				errs = append(errs, fmt.Errorf("the pool of network %s: %w", short(n.ID), err))
			}
		}
	}
	return errors.Join(append(errs, p.pass(ctx))...)
}

// pass is one round of collection (engine.GC: interrupted work, failed releases, orphans
// outside the state) and reconciliation with Docker.
func (p *Plugin) pass(ctx context.Context) error {
	// The owners of attachments at rest are judged by Reconcile (endpoints) and by the
	// command line's gc (sandboxes), not here.
	r, err := p.cfg.Engine.GC(ctx, nil, p.cfg.Grace)
	if r.Interrupted+r.OwnerGone+r.Ports+r.OVSPorts+r.Veths > 0 {
		p.log.Info("collected what interrupted work left", "report", r.String())
	}
	if err != nil {
		err = fmt.Errorf("gc: %w", err)
	}
	return errors.Join(err, p.followHost(ctx), p.Reconcile(ctx))
}

// Maintain collects and reconciles every interval until ctx ends: a release that failed
// half-way is tried again, a Neutron port no attachment records is deleted, and what
// Docker forgot while it could not reach the plugin (an address it never released) goes
// after the grace period.
func (p *Plugin) Maintain(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.pass(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("reconcile", "err", err)
			}
		}
	}
}

// dockerView is what Docker knows, for one pass of reconciliation.
type dockerView struct {
	nets map[string]docker.Network // the driver's networks, by ID
}

// knows reports what Docker has of an attachment on the given Docker networks: the
// endpoint that owns it, and an endpoint holding its address.
func (v dockerView) knows(netIDs []string, a *state.Attachment) (endpoint, address bool) {
	for _, id := range netIDs {
		n, ok := v.nets[id]
		if !ok {
			continue
		}
		for _, e := range n.Endpoints {
			if e.ID == a.Owner {
				endpoint = true
			}
			if ip, err := parseIP(e.IPv4); err == nil && hasAddress(a, ip) {
				address = true
			}
		}
	}
	return endpoint, address
}

// Reconcile brings the plugin's records and attachments in line with Docker:
//   - an endpoint Docker has keeps its plumbing (a lost veth pair or access port is
//     made again);
//   - an attachment whose endpoint and address Docker does not know is released;
//   - a network or pool Docker does not know is released, with the Neutron network
//     when ovn-docker made it;
//   - networks whose Docker name is not yet known learn it.
//
// What changed less than Grace ago is left alone: Docker may be creating it. Without a
// Docker daemon that answers nothing is released.
func (p *Plugin) Reconcile(ctx context.Context) error {
	if p.cfg.Docker == nil {
		return nil
	}
	list, err := p.cfg.Docker.Networks(ctx, p.cfg.Name)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	view := dockerView{nets: map[string]docker.Network{}}
	for _, n := range list {
		view.nets[n.ID] = n
	}
	atts, err := p.cfg.Engine.AttachmentsOfKind(ctx, state.OwnerEndpoint)
	if err != nil {
		return err
	}
	recs, err := p.cfg.Engine.DockerRecords(ctx)
	if err != nil {
		return err
	}
	var nets []*state.DockerNetwork
	for _, n := range recs.Networks {
		nets = append(nets, n)
	}
	var pools []*state.DockerPool
	for _, pl := range recs.Pools {
		pools = append(pools, pl)
	}
	now := p.cfg.Now()
	var errs []error
	for _, a := range atts {
		// The Docker networks (of this daemon, known to Docker) on the attachment's
		// Neutron network.
		var on []string
		for _, n := range nets {
			if _, ok := view.nets[n.ID]; ok && n.NeutronNetwork == a.NetworkID {
				on = append(on, n.ID)
			}
		}
		if err := p.reconcileAttachment(ctx, view, on, a, now); err != nil {
			errs = append(errs, fmt.Errorf("attachment %s: %w", a.ID, err))
		}
	}
	for _, n := range nets {
		if dn, ok := view.nets[n.ID]; ok {
			if n.Name == "" {
				p.name(ctx, n.ID, dn.Name)
			}
			continue
		}
		if now.Sub(n.Created) < p.cfg.Grace {
			continue
		}
		p.log.Info("Docker no longer has the network: releasing it", "network", n.ID, "name", n.Name)
		if err := p.forgetNetwork(ctx, n.ID); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", short(n.ID), err))
		}
	}
	if err := p.reconcileParked(ctx); err != nil {
		errs = append(errs, fmt.Errorf("parked ports: %w", err))
	}
	for _, pl := range pools {
		if pl.Network != "" || now.Sub(pl.Requested) < p.cfg.Grace {
			continue
		}
		p.log.Info("releasing a pool no network took", "pool", pl.ID, "cidr", pl.CIDR)
		if err := p.reapPool(ctx, pl.ID); err != nil {
			errs = append(errs, fmt.Errorf("pool %s: %w", pl.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Plugin) reconcileAttachment(ctx context.Context, view dockerView, on []string, a *state.Attachment, now time.Time) error {
	ip := firstIP(a)
	keys := []string{addrKey(a.NetworkID, ip)}
	if !strings.HasPrefix(a.Owner, "ipam:") {
		keys = append(keys, epKey(a.Owner))
	}
	defer p.locks.lock(keys...)()
	// Read it again under the locks: a call may have changed it since the snapshot.
	cur, err := p.cfg.Engine.Attachment(ctx, a.ID)
	if err != nil || cur == nil || !cur.Updated.Equal(a.Updated) || cur.Owner != a.Owner {
		return err
	}
	switch a.Phase {
	case state.PhasePrepared, state.PhaseReady, state.PhaseAttached:
	default:
		return nil // someone is working on it; Recover handles the dead
	}
	endpoint, address := view.knows(on, a)
	switch {
	case endpoint:
		return p.repair(ctx, a)
	case address:
		return nil // Docker is creating its endpoint, or will release it
	case now.Sub(a.Updated) < p.cfg.Grace:
		return nil
	}
	p.log.Info("Docker does not know the endpoint or address: releasing it", "attachment", a.ID, "owner", short(a.Owner), "address", ip, "port", a.PortID)
	return p.cfg.Engine.Detach(ctx, a.ID)
}

// repair gives an endpoint Docker has its plumbing back: the veth pair when it is gone
// (made in the VM, for the next Join), the access port when only it is gone. An endpoint
// not plumbed is left for Join.
func (p *Plugin) repair(ctx context.Context, a *state.Attachment) error {
	if !plumbed(a) {
		return nil
	}
	host, err := p.cfg.Host.LinkExists(ctx, a.HostIf)
	if err != nil {
		return err
	}
	if !host {
		p.log.Warn("an endpoint's veth is gone: making it again", "attachment", a.ID, "veth", a.HostIf)
		if err := p.cfg.Engine.Unplumb(ctx, a.ID); err != nil {
			return err
		}
		_, err := p.cfg.Engine.Plumb(ctx, a.ID, engine.Request{Owner: a.Owner, OwnerKind: state.OwnerEndpoint})
		return err
	}
	port, err := p.cfg.Host.PortExists(ctx, a.HostIf)
	if err != nil || port {
		return err
	}
	p.log.Warn("an endpoint's access port is gone: adding it again", "attachment", a.ID, "veth", a.HostIf, "vlan", a.VLAN)
	return p.cfg.Engine.RestoreAccessPort(ctx, a.ID)
}

func firstIP(a *state.Attachment) string {
	for _, s := range a.IPs {
		if pf, err := netip.ParsePrefix(s); err == nil {
			return pf.Addr().String()
		}
	}
	return ""
}

// forgetNetwork releases a network Docker no longer has: the addresses left on its pool,
// the Neutron network if ovn-docker made it, the records, and the pool (Docker will not
// release a pool of a network it does not know).
func (p *Plugin) forgetNetwork(ctx context.Context, id string) error {
	rec, _, err := p.network(ctx, id)
	if err != nil {
		return err
	}
	if _, err := p.deleteNetwork(ctx, &networkRequest{NetworkID: id}); err != nil {
		return err
	}
	return p.reapPool(ctx, rec.Pool)
}

// reapPool releases a pool that no network took within the grace period.
func (p *Plugin) reapPool(ctx context.Context, id string) error {
	defer p.locks.lock(poolKey(id))()
	pool, err := p.pool(ctx, id)
	if err != nil || pool == nil || pool.Network != "" {
		return err
	}
	return p.dropPool(ctx, pool)
}

// learnName waits until Docker shows the network it just created, then records its
// name and gives a Neutron network made for it that name.
func (p *Plugin) learnName(ctx context.Context, id string) {
	if p.cfg.Docker == nil {
		return
	}
	// Docker stores the network as soon as CreateNetwork returns: look often at first,
	// so that the name is in Neutron about when docker network create returns.
	wait := 20 * time.Millisecond
	for end := time.Now().Add(time.Minute); time.Now().Before(end); {
		n, err := p.cfg.Docker.Network(ctx, id)
		if err == nil {
			p.name(ctx, id, n.Name)
			return
		}
		if !errors.Is(err, docker.ErrNotFound) {
			p.log.Debug("learn the network's name", "network", id, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if wait < time.Second {
			wait += wait / 2
		}
	}
	p.log.Warn("Docker did not show the network in time: it keeps its Neutron name", "network", id)
}

// name records a Docker network's name and gives it to the Neutron network ovn-docker
// made for it, unless another Neutron network already has that name.
func (p *Plugin) name(ctx context.Context, id, name string) {
	defer p.locks.lock(netKey(id))()
	rec, pool, err := p.network(ctx, id)
	if err != nil || rec.Name != "" {
		return
	}
	if pool.Created && pool.NeutronNetwork != "" {
		p.rename(ctx, pool.NeutronNetwork, name)
	}
	err = p.cfg.Engine.EditDockerRecords(ctx, func(d *engine.DockerRecords) error {
		if n := d.Networks[id]; n != nil {
			n.Name = name
		}
		return nil
	})
	if err != nil {
		p.log.Warn("record the network's name", "network", id, "err", err)
	}
}

func (p *Plugin) rename(ctx context.Context, neutronID, name string) {
	if err := neutron.ValidateNetworkName(name); err != nil {
		p.log.Warn("the Docker network's name does not suit Neutron: the Neutron network keeps its own", "neutron_network", neutronID, "err", err)
		return
	}
	other, err := p.cfg.Neutron.FindNetwork(ctx, name)
	switch {
	case err == nil && other.ID == neutronID:
		return
	case err == nil || !errors.Is(err, neutron.ErrNotFound):
		// Names are how users pick networks: never make one ambiguous.
		p.log.Warn("Neutron already has a network of that name: the Neutron network keeps its own", "neutron_network", neutronID, "name", name, "err", err)
		return
	}
	if err := p.cfg.Neutron.RenameNetwork(ctx, neutronID, name); err != nil {
		p.log.Warn("rename the Neutron network", "neutron_network", neutronID, "name", name, "err", err)
		return
	}
	p.nets.forget(neutronID)
	p.log.Info("named the Neutron network after the Docker network", "neutron_network", neutronID, "name", name)
}

// labelEndpoint names the container of a joined endpoint on its attachment and port,
// once Docker shows it.
func (p *Plugin) labelEndpoint(ctx context.Context, networkID, endpointID, attID string) {
	if p.cfg.Docker == nil {
		return
	}
	wait := 100 * time.Millisecond
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
		n, err := p.cfg.Docker.Network(ctx, networkID)
		if err == nil {
			for _, e := range n.Endpoints {
				if e.ID == endpointID && e.Container != "" {
					if err := p.label(ctx, endpointID, attID, e.Container, e.Name); err != nil {
						p.log.Debug("label the endpoint's port", "endpoint", short(endpointID), "err", err)
						return
					}
					p.noteRestarts(ctx, endpointID, attID, e.Container)
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if wait < 2*time.Second {
			wait *= 2
		}
	}
}

func (p *Plugin) label(ctx context.Context, endpointID, attID, container, name string) error {
	defer p.locks.lock(epKey(endpointID))()
	att, err := p.attachmentOf(ctx, endpointID)
	if err != nil || att == nil || att.ID != attID {
		return err
	}
	return p.cfg.Engine.Label(ctx, attID, container, name)
}

// noteRestarts records on an endpoint's attachment whether its container restarts by
// itself: when dockerd starts again, such a container's parked port is the one its
// IPAM request gets back (see unpark).
func (p *Plugin) noteRestarts(ctx context.Context, endpointID, attID, container string) {
	info, err := p.cfg.Docker.Inspect(ctx, container)
	if err != nil || !restarts(info.RestartPolicy) {
		return
	}
	defer p.locks.lock(epKey(endpointID))()
	h := engine.Holder{Owner: endpointID, Kind: state.OwnerEndpoint}
	if _, err := p.cfg.Engine.Hand(ctx, attID, h, h, func(a *state.Attachment) { a.Restarts = true }); err != nil {
		p.log.Debug("note the container's restart policy", "attachment", attID, "err", err)
	}
}
