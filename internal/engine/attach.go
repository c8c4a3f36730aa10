package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Request asks for one container interface.
type Request struct {
	Owner          string // who holds it: the sandbox container (CLI), Docker's endpoint, a pool
	OwnerKind      string // state.OwnerSandbox, OwnerEndpoint or OwnerPool
	Container      string // the user's container, when known
	ContainerName  string
	Network        *neutron.Network
	IfName         string // eth0, eth1... in the container
	NetNS          string // the container's netns; "" leaves the pair in the VM (Docker moves it)
	DefaultRoute   bool   // this interface carries the default route(s)
	SecurityGroups []string
	// Port asks for the port's allowed addresses, QoS policy, DNS name, port security;
	// a pool's interface, made without them, never serves such a request.
	Port neutron.PortOptions
	// AtRest leaves a prepared attachment to no process (PID 0): a daemon's IPAM or pool
	// holds it across restarts. Otherwise it stays this process's until plumbed, and a
	// crash before that makes it an orphan for Recover.
	AtRest bool
	Pool   string // the pool the attachment belongs to while it waits for a container
	// IPAMPool is the Docker IPAM pool that hands the port out; Secondary says the
	// interface does not carry the default route (both: the Docker plugin's).
	IPAMPool  string
	Secondary bool
	// FixedIPs are the addresses the interface must have (--ip, --ip6), at most one per
	// family; the families not named get Neutron's choice. None: all Neutron's. A pool's
	// interface never serves such a request.
	FixedIPs []netip.Addr
}

// Attach makes one container interface: Prepare, then Plumb. On failure nothing it made
// remains.
func (e *Engine) Attach(ctx context.Context, req Request) (*state.Attachment, error) {
	if err := checkRequest(req, true); err != nil {
		return nil, err
	}
	if err := e.guard(ctx); err != nil {
		return nil, err
	}
	att, subport, err := e.prepare(ctx, req, true)
	if err != nil {
		return nil, err
	}
	id := att.ID
	made := *att
	// Neutron adds the subport while the veth and the access port are made: the local
	// plumbing needs nothing from it, and it costs Neutron's time, not the VM's.
	// The subport step works on att (it may change the VLAN); the plumbing on a copy.
	local := *att
	var subErr error
	vlanNow := local.VLAN
	done := make(chan struct{})
	go func() {
		defer close(done)
		if subport != nil {
			if subErr = subport(ctx); subErr == nil {
				vlanNow = e.vlanOf(ctx, id, local.VLAN)
			}
		}
	}()
	_, _, err = e.plumbLocal(ctx, &local, req)
	<-done
	if err == nil && subErr != nil {
		err = subErr
	}
	if subport != nil && subErr == nil {
		e.fault("subport")
	}
	if err == nil && subport != nil && vlanNow != local.VLAN {
		// The trunk made addSubport pick another VLAN: the access port follows.
		local.VLAN = vlanNow
		err = e.retag(ctx, &local)
	}
	if err == nil {
		att, err = e.finish(ctx, &local, req)
	}
	if err != nil {
		// The full release undoes the local part and the Neutron part alike, whatever
		// of them exists. It works from what this run made, not from the state: the
		// state may be what failed.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RollbackTimeout)
		defer cancel()
		if rerr := e.release(uctx, &made); rerr != nil {
			e.log.Error("rollback failed; gc will finish it", "attachment", id, "err", rerr)
			err = fmt.Errorf("%w (and rollback failed: %v; run ovn-docker gc)", err, rerr)
		}
		return nil, err
	}
	return att, nil
}

func checkRequest(req Request, plumb bool) error {
	if req.Network == nil || req.Network.ID == "" {
		return errors.New("attach: no network")
	}
	if req.Owner == "" {
		return errors.New("attach: no owner")
	}
	if plumb && req.NetNS != "" && req.IfName == "" {
		return errors.New("attach: no interface name")
	}
	return nil
}

// checkProject refuses a network outside the VM port's project unless it is shared.
// Tenant credentials never see such a network; admin credentials do, and must not use
// them to put a VM's container on another tenant's network.
func (e *Engine) checkProject(ctx context.Context, n *neutron.Network) error {
	if n.Shared || n.ProjectID == "" {
		return nil
	}
	e.mu.Lock()
	project := e.project
	if project == "" {
		project = e.cfg.VIFProject
	}
	e.mu.Unlock()
	if project == "" {
		p, err := e.cfg.Neutron.GetPort(ctx, e.cfg.VIFID)
		if err != nil {
			return fmt.Errorf("the VM's port %s: %w", e.cfg.VIFID, err)
		}
		project = p.ProjectID
		e.mu.Lock()
		e.project = project
		e.mu.Unlock()
	}
	if project != "" && n.ProjectID != project {
		return fmt.Errorf("network %s belongs to project %s, the VM's port %s to project %s: "+
			"a container joins only networks of its VM's project, or shared ones", n.Name, n.ProjectID, e.cfg.VIFID, project)
	}
	return nil
}

// parentHost reads, once, the host the VM's port is bound to: in binding-profile mode the
// container ports are bound there too.
func (e *Engine) parentHost(ctx context.Context) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.host != "" {
		return e.host, nil
	}
	p, err := e.cfg.Neutron.GetPort(ctx, e.cfg.VIFID)
	if err != nil {
		return "", fmt.Errorf("the VM's port %s: %w", e.cfg.VIFID, err)
	}
	e.host = p.HostID
	return e.host, nil
}

// Prepare does Neutron's part of an attach: a VLAN unique in the VM, the Neutron port
// (which gives MAC and IPs) and, in trunk mode, the port as the VM trunk's subport with
// that VLAN. The attachment ends in phase prepared. On failure nothing it made remains.
func (e *Engine) Prepare(ctx context.Context, req Request) (*state.Attachment, error) {
	att, _, err := e.prepare(ctx, req, false)
	return att, err
}

// prepare is Prepare; merged (Attach) writes the state three times in all instead of
// six: the intent of each outside step is recorded with the result of the one before,
// and the local plumbing's names (from the port's ID) with the port.
//
// Merged, it stops once the port is recorded and hands back the subport step (nil in
// binding-profile mode) for Attach to run alongside the local plumbing; undoing is then
// Attach's job.
func (e *Engine) prepare(ctx context.Context, req Request, merged bool) (att *state.Attachment, subport func(context.Context) error, err error) {
	if err := checkRequest(req, false); err != nil {
		return nil, nil, err
	}
	if err := e.checkProject(ctx, req.Network); err != nil {
		return nil, nil, err
	}
	fixed, err := portAddresses(req.Network, req.FixedIPs)
	if err != nil {
		return nil, nil, err
	}
	var undo undoStack
	defer func() {
		if err != nil {
			e.unwind(ctx, undo, att, &err)
			att = nil
		}
	}()

	// The trunk first: its subports' VLANs are in use even when no state records them.
	// In binding-profile mode an existing trunk's VLANs are still taken: OVN cannot tell
	// two children of one parent with one tag apart.
	t0 := time.Now()
	trunk, seen, err := e.trunk(ctx)
	if err != nil {
		return nil, nil, err
	}
	e.observe("trunk", t0)

	// 1. Reserve a VLAN and record the attachment, with the intent to make its port.
	t0 = time.Now()
	att, err = e.reserve(ctx, req, seen)
	if err != nil {
		return nil, nil, err
	}
	undo.push(func(ctx context.Context) error { return e.forget(ctx, att.ID) })
	e.observe("reserve", t0)
	e.fault("reserved")

	// 2. The Neutron port.
	t0 = time.Now()
	preq := neutron.PortRequest{
		NetworkID: req.Network.ID, AttachmentID: att.ID, VIFID: e.cfg.VIFID,
		Mode: e.cfg.Mode, VLAN: att.VLAN, SecurityGroups: req.SecurityGroups, Options: req.Port, FixedIPs: fixed,
	}
	if e.cfg.Mode == neutron.ModeBindingProfile {
		// Admin acts for the tenant: the port is bound where the VM is, and belongs to
		// the network's project, whose security groups then apply to it.
		if preq.HostID, err = e.parentHost(ctx); err != nil {
			return att, nil, err
		}
		preq.ProjectID = req.Network.ProjectID
	}
	port, err := e.cfg.Neutron.CreatePort(ctx, preq)
	if err != nil {
		// A timeout may hide a port Neutron did make: look for it by name on the way out.
		undo.push(func(ctx context.Context) error { return e.deleteOrphanPort(ctx, att.ID) })
		if errors.Is(err, neutron.ErrAddressInUse) {
			return att, nil, fmt.Errorf("address %s is already in use on network %s: %w", addressesOf(fixed), req.Network.Name, err)
		}
		return att, nil, fmt.Errorf("neutron port for attachment %s: %w", att.ID, err)
	}
	undo.push(func(ctx context.Context) error { return e.cfg.Neutron.DeletePort(ctx, port.ID) })
	// The port, and the intent of what comes next: the subport, and (merged) the pair and
	// access port, whose names follow from the port's ID.
	next := state.PhasePrepared
	if trunk != nil {
		next = state.PhaseSubport
	} else if merged {
		next = state.PhasePlumb
	}
	if err = e.setPhase(ctx, att, next, func(a *state.Attachment) {
		fillFromPort(a, port, req.Network)
		if trunk != nil {
			a.TrunkID = trunk.ID
		}
		if merged {
			a.HostIf, a.PeerIf = netdev.HostName(port.ID), netdev.PeerName(port.ID)
		}
		if next == state.PhasePrepared && req.AtRest {
			a.PID = 0
		}
	}); err != nil {
		return att, nil, err
	}
	e.observe("port", t0)
	e.fault("port")

	// 3. The subport.
	if trunk != nil {
		// The fault hook is the caller's to call: it may run in another goroutine.
		subport = func(ctx context.Context) error {
			t0 := time.Now()
			if err := e.addSubport(ctx, att, trunk, port.ID); err != nil {
				return err
			}
			e.observe("subport", t0)
			return nil
		}
	}
	if merged {
		return att, subport, nil
	}
	if subport != nil {
		undo.push(func(ctx context.Context) error { return e.removeSubportCall(ctx, att.TrunkID, port.ID) })
		if err = subport(ctx); err != nil {
			return att, nil, err
		}
		e.fault("subport")
	}
	if next == state.PhasePrepared {
		return att, nil, nil
	}
	if err = e.setPhase(ctx, att, state.PhasePrepared, func(a *state.Attachment) {
		if req.AtRest {
			a.PID = 0
		}
	}); err != nil {
		return att, nil, err
	}
	return att, nil, nil
}

// Plumb does the local part of an attach for a prepared attachment: the veth pair (its
// container end moved into req.NetNS as req.IfName with Neutron's MAC, addresses, MTU
// and, with req.DefaultRoute, the default route; or left in the VM for Docker to move),
// the access port tag=VLAN on the VM's bridge, then the wait until Neutron reports the
// port ACTIVE. The owner becomes req.Owner. On failure the attachment is back to
// prepared, with nothing local left.
func (e *Engine) Plumb(ctx context.Context, attID string, req Request) (*state.Attachment, error) {
	att, undo, err := e.plumb(ctx, &state.Attachment{ID: attID}, req)
	if err != nil {
		e.unwind(ctx, undo, att, &err)
		return nil, err
	}
	return att, nil
}

// plumb is Plumb that hands its undo steps to the caller instead of running them.
func (e *Engine) plumb(ctx context.Context, att *state.Attachment, req Request) (*state.Attachment, undoStack, error) {
	if err := e.guard(ctx); err != nil {
		return att, nil, err
	}
	att, undo, err := e.plumbLocal(ctx, att, req)
	if err != nil {
		return att, undo, err
	}
	att, err = e.finish(ctx, att, req)
	return att, undo, err
}

// plumbLocal makes the veth pair and the access port of a prepared attachment.
func (e *Engine) plumbLocal(ctx context.Context, att *state.Attachment, req Request) (_ *state.Attachment, undo undoStack, err error) {
	attID := att.ID
	if att.HostIf == "" {
		// Not an Attach: record the intent (and the new owner) first.
		if err := e.setPhase(ctx, att, state.PhasePlumb, func(a *state.Attachment) {
			if req.Owner != "" {
				a.Owner, a.OwnerKind = req.Owner, req.OwnerKind
			}
			if req.Container != "" || req.ContainerName != "" {
				a.Container, a.ContainerName = req.Container, req.ContainerName
			}
			a.IfName, a.NetNS, a.PID = req.IfName, req.NetNS, os.Getpid()
			a.HostIf, a.PeerIf = netdev.HostName(a.PortID), netdev.PeerName(a.PortID)
		}); err != nil {
			return att, nil, err
		}
		undo.push(func(ctx context.Context) error {
			return e.setPhase(ctx, att, state.PhasePrepared, func(a *state.Attachment) { a.HostIf, a.PeerIf, a.NetNS = "", "", "" })
		})
	}
	if att.PortID == "" || att.HostIf == "" {
		return att, undo, fmt.Errorf("attachment %s has no Neutron port yet", attID)
	}

	t0 := time.Now()
	host, peer := att.HostIf, att.PeerIf
	undo.push(func(ctx context.Context) error { return e.cfg.Links.Delete(ctx, host) })
	if req.NetNS != "" {
		err = e.cfg.Links.Create(ctx, specOf(att, req.NetNS, req.DefaultRoute))
	} else {
		var mac net.HardwareAddr
		mac, err = net.ParseMAC(att.MAC)
		if err == nil {
			err = e.cfg.Links.CreatePair(ctx, host, peer, att.MTU, mac)
		}
	}
	if err != nil {
		return att, undo, fmt.Errorf("veth for %s: %w", firstOf(req.IfName, peer), err)
	}
	e.fault("veth")
	undo.push(func(ctx context.Context) error { return e.cfg.Switch.DeletePort(ctx, e.cfg.Bridge, host) })
	if err = e.cfg.Switch.AddAccessPort(ctx, e.accessPort(att)); err != nil {
		return att, undo, fmt.Errorf("access port %s tag %d on %s: %w", host, att.VLAN, e.cfg.Bridge, err)
	}
	e.observe("plumb", t0)
	e.fault("ovs")
	return att, undo, nil
}

// retag moves an access port to the attachment's (new) VLAN.
func (e *Engine) retag(ctx context.Context, att *state.Attachment) error {
	if err := e.cfg.Switch.DeletePort(ctx, e.cfg.Bridge, att.HostIf); err != nil {
		return fmt.Errorf("retag access port %s: %w", att.HostIf, err)
	}
	if err := e.cfg.Switch.AddAccessPort(ctx, e.accessPort(att)); err != nil {
		return fmt.Errorf("retag access port %s to vlan %d: %w", att.HostIf, att.VLAN, err)
	}
	return nil
}

// finish proves the data path and records the attachment at rest.
func (e *Engine) finish(ctx context.Context, att *state.Attachment, req Request) (*state.Attachment, error) {
	// Only once OVN on the hypervisor has the port's flows do packets pass: the
	// container may not start before (Neutron's ACTIVE does not tell, see package probe).
	t0 := time.Now()
	nsPath, ifName := req.NetNS, req.IfName
	if nsPath == "" {
		ifName = att.PeerIf
	}
	if err := e.waitReady(ctx, att, nsPath, ifName); err != nil {
		return att, err
	}
	e.observe("ready", t0)

	phase := state.PhaseAttached
	if req.NetNS == "" {
		phase = state.PhaseReady
	}
	if err := e.setPhase(ctx, att, phase, func(a *state.Attachment) { a.PID, a.ProbeRouters = 0, att.ProbeRouters }); err != nil {
		return att, err
	}
	e.fault("attached")
	e.log.Info("attached", "attachment", att.ID, "network", att.NetworkName, "vlan", att.VLAN,
		"port", att.PortID, "mac", att.MAC, "ips", att.IPs, "ifname", att.IfName)
	return att, nil
}

// waitReady probes the interface's data path, for each family OVN answers on, until OVN
// answers or ReadyTimeout passes: DHCP for IPv4, DHCPv6 for IPv6, and where there is
// none (DHCP off, SLAAC or static IPv6) the gateway's router port (ARP, NS, or RS), and
// without one OVN's switch for another port's address (ARP, NS). A family nothing
// answers for is not probed, and the log says so.
func (e *Engine) waitReady(ctx context.Context, att *state.Attachment, nsPath, ifName string) error {
	if e.cfg.ReadyTimeout < 0 {
		return nil
	}
	plan := readyPlan(att)
	if att.Phase == state.PhaseReplug {
		plan = plan.recorded(att.ProbeRouters).unasked()
	} else {
		plan = e.findRouters(ctx, att, plan)
		att.ProbeRouters = plan.routers()
		plan = e.findNeighbors(ctx, att, plan)
	}
	logAt := e.log.Debug
	if len(plan.skipped) > 0 || len(plan.gateways) > 0 {
		logAt = e.log.Info // a family proven otherwise than by DHCP, or not at all, is worth a line
	}
	logAt("data path proof", "attachment", att.ID, "network", att.NetworkName, "proof", plan.say())
	if len(plan.probes) == 0 && len(plan.gateways) == 0 {
		return nil
	}
	mac, err := net.ParseMAC(att.MAC)
	if err != nil {
		return fmt.Errorf("attachment %s: mac %q: %w", att.ID, att.MAC, err)
	}
	pctx, cancel := context.WithTimeout(ctx, e.cfg.ReadyTimeout)
	defer cancel()
	for _, ip := range plan.probes {
		if err := e.cfg.Links.Probe(pctx, nsPath, ifName, mac, ip); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("wait for the data path of port %s: %w", att.PortID, ctx.Err())
			}
			return fmt.Errorf("the data path of port %s is not live after %s (%w): OVN on the hypervisor has not bound it", att.PortID, e.cfg.ReadyTimeout, err)
		}
	}
	for _, g := range plan.gateways {
		if err := e.cfg.Links.ProbeGateway(pctx, nsPath, ifName, mac, g); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("wait for the data path of port %s: %w", att.PortID, ctx.Err())
			}
			if g.NeighborDown {
				e.log.Warn("data path not proven", "attachment", att.ID, "network", att.NetworkName,
					"why", fmt.Sprintf("OVN did not answer for %s of port %s, DOWN in Neutron (does NB_Global say ignore_lsp_down=false?): %v", g.Gateway, g.Neighbor, err))
				continue
			}
			return fmt.Errorf("the data path of port %s is not live after %s (%w): OVN on the hypervisor has not bound it", att.PortID, e.cfg.ReadyTimeout, err)
		}
	}
	return nil
}

// Label names the user's container on an attachment, in the state and on the Neutron
// port's tags. Tags cost a call of their own, so front-ends call this once the
// container runs; a failure only leaves the tags out.
func (e *Engine) Label(ctx context.Context, attID, container, containerName string) error {
	portID, err := e.Name(ctx, attID, container, containerName)
	if err != nil || portID == "" {
		return err
	}
	return e.TagPort(ctx, portID, container)
}

// Name records the user's container on an attachment, in the state only, and returns
// its port: what ovn-docker needs at once (its port is then kept for that container).
func (e *Engine) Name(ctx context.Context, attID, container, containerName string) (portID string, err error) {
	err = e.cfg.Store.Update(ctx, func(st *state.State) error {
		a := st.Attachments[attID]
		if a == nil {
			return fmt.Errorf("no attachment %s", attID)
		}
		a.Container, a.ContainerName, a.Updated = container, containerName, time.Now().UTC()
		portID = a.PortID
		return nil
	})
	return portID, err
}

// NamePort gives a pool's port, taken by a container with a hostname, its dns_name: a
// call of its own that, like the tags, nothing waits for.
func (e *Engine) NamePort(ctx context.Context, portID, dnsName string) error {
	return e.cfg.Neutron.SetDNSName(ctx, portID, dnsName)
}

// TagPort tags a Neutron port with the VM and the container: what an operator reads in
// Neutron, which nothing waits for (the agent does it in the background).
func (e *Engine) TagPort(ctx context.Context, portID, container string) error {
	tags := []string{neutron.Tag, neutron.TagVM + e.cfg.VIFID}
	if container != "" {
		tags = append(tags, neutron.TagContainer+short(container))
	}
	return e.cfg.Neutron.SetTags(ctx, portID, tags)
}
