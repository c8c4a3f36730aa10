// Package engine attaches container interfaces to Neutron networks inside a VM and
// detaches them, for every front-end of ovn-docker (the CLI, the Docker plugin, the pool).
//
// An attach is a chain of outside steps: a VLAN unique in the VM, a Neutron port on the
// network, the port made a subport of the VM port's trunk with that VLAN (or given
// binding:profile {parent_name, tag}), a veth pair whose VM end is an access port
// tag=VLAN on the VM's bridge, and the container end moved into the container with
// Neutron's MAC, addresses, gateway and MTU. Before each step the engine records its
// intent in the state file; when a step fails, every step already done is undone, in
// reverse order, and the attachment disappears from the state. A process killed mid-way
// leaves an attachment whose PID is dead: Recover finishes the job by undoing it.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/probe"
	"github.com/ovn-docker/ovn-docker/internal/state"
	"github.com/ovn-docker/ovn-docker/internal/subports"
	"github.com/ovn-docker/ovn-docker/internal/vlan"
)

// Neutron is what the engine asks of Neutron; *neutron.Client implements it.
type Neutron interface {
	CreatePort(ctx context.Context, r neutron.PortRequest) (*neutron.Port, error)
	GetPort(ctx context.Context, id string) (*neutron.Port, error)
	DeletePort(ctx context.Context, id string) error
	PortByAttachment(ctx context.Context, vifID, attachmentID string) (*neutron.Port, error)
	EnsureTrunk(ctx context.Context, parentPortID string) (*neutron.Trunk, error)
	TrunkOf(ctx context.Context, parentPortID string) (*neutron.Trunk, error)
	AddSubport(ctx context.Context, trunkID, portID string, vlan int) error
	RemoveSubport(ctx context.Context, trunkID, portID string) error
	SetTags(ctx context.Context, portID string, tags []string) error
}

// Switch is the VM's Open vSwitch; *ovs.Client implements it.
type Switch interface {
	AddAccessPort(ctx context.Context, p ovs.AccessPort) error
	DeletePort(ctx context.Context, bridge, name string) error
	UsedTags(ctx context.Context, bridge string) (map[int]bool, error)
}

// Links makes and removes veth pairs; Netlink implements it with the netdev package.
type Links interface {
	Create(ctx context.Context, s netdev.Spec) error
	CreatePair(ctx context.Context, hostName, peerName string, mtu int, mac net.HardwareAddr) error
	Delete(ctx context.Context, hostName string) error
	// Probe proves the data path of an interface (see package probe): in the netns at
	// nsPath ("" for the VM's), from ifName with the port's MAC, OVN must offer ip.
	Probe(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, ip netip.Addr) error
}

// Netlink is the real Links.
type Netlink struct{}

func (Netlink) Create(ctx context.Context, s netdev.Spec) error { return netdev.Create(ctx, s) }
func (Netlink) CreatePair(ctx context.Context, h, p string, mtu int, mac net.HardwareAddr) error {
	return netdev.CreatePairMAC(ctx, h, p, mtu, mac)
}
func (Netlink) Delete(ctx context.Context, h string) error { return netdev.Delete(ctx, h) }
func (Netlink) Probe(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, ip netip.Addr) error {
	return probe.DHCP(ctx, nsPath, ifName, mac, ip)
}

// External IDs ovn-docker puts on the OVS ports it makes.
const (
	ExtAttachment = "ovn-docker-attachment"
	ExtPort       = "ovn-docker-port"
	ExtVLAN       = "ovn-docker-vlan"
	ExtContainer  = "ovn-docker-container"
	ExtNetwork    = "ovn-docker-network"
)

// Config is an engine's wiring: one VM, one bridge, one state file.
type Config struct {
	VIFID string // the VM's Neutron port
	// VIFProject is the VM port's project, when the caller knows it (else read once):
	// a container joins only networks of that project, or shared ones.
	VIFProject string
	Bridge     string       // the VM's OVS bridge
	Mode       neutron.Mode // trunk (default) or binding-profile
	Store      *state.Store
	Neutron    Neutron
	Switch     Switch
	Links      Links        // default Netlink{}
	Log        *slog.Logger // default slog.Default()
	// ReadyTimeout bounds the wait for the data path to be live (OVN answers the
	// interface's DHCP probe) before the container may use it; 0 means 20 s, negative:
	// no probe.
	ReadyTimeout time.Duration
	// RollbackTimeout bounds the undoing of a failed attach; 0 means 30 s. What it does
	// not undo in time is recorded, and gc or the next Recover finishes it: a user whose
	// run failed because Neutron hangs is not kept waiting on Neutron again.
	RollbackTimeout time.Duration
	// Observe, when set, is told the duration of each phase ("trunk", "reserve", "port",
	// "subport", "plumb", "active") of every attach; trunk and subport only in trunk mode.
	Observe func(phase string, d time.Duration)
	// Fault, when set, is called after each named step; tests use it to kill the process
	// there and prove that recovery leaves nothing behind.
	Fault func(step string)
	// Subports, when set, sends trunk changes in batches with the VM's other processes
	// (package subports); a change it gives back is made alone.
	Subports SubportQueue
	// TrunkID is the VM port's trunk as last seen (trunk mode), when the caller keeps it:
	// Neutron is then asked only when it proves wrong. OnTrunk is told each trunk read
	// from Neutron.
	TrunkID string
	OnTrunk func(id string)
}

// SubportQueue batches trunk changes; *subports.Batcher implements it. An error that is
// subports.ErrAlone asks the caller to make the change by itself.
type SubportQueue interface {
	Add(ctx context.Context, trunkID, portID string, vlan int) error
	Remove(ctx context.Context, trunkID, portID string) error
}

// Engine attaches and detaches container interfaces of one VM.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	project   string         // the VM port's project, once known
	host      string         // the VM port's binding host, once read (binding-profile mode)
	trunkSeen bool           // the trunk below was read (it may be nil in binding-profile mode)
	trunkMemo *neutron.Trunk // the VM port's trunk: its ID does not change
}

// trunk returns the VM port's trunk (trunk mode: made if needed) and the trunk whose
// VLANs are taken (in binding-profile mode an existing trunk's, if any). It asks Neutron
// once per engine; a trunk changed behind its back shows up as a VLAN clash or a missing
// trunk on add_subports, and refreshTrunk reads it again.
func (e *Engine) trunk(ctx context.Context) (trunk, seen *neutron.Trunk, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.trunkSeen {
		switch {
		case e.cfg.Mode == neutron.ModeTrunk && e.cfg.TrunkID != "":
			// Its subports are not known: a VLAN one of them holds outside the state comes
			// back from add_subports as a clash, and the trunk is read then.
			e.trunkMemo = &neutron.Trunk{ID: e.cfg.TrunkID, ParentID: e.cfg.VIFID, Subports: map[string]int{}}
		case e.cfg.Mode == neutron.ModeTrunk:
			e.trunkMemo, err = e.cfg.Neutron.EnsureTrunk(ctx, e.cfg.VIFID)
			if err == nil && e.cfg.OnTrunk != nil {
				e.cfg.OnTrunk(e.trunkMemo.ID)
			}
		default:
			e.trunkMemo, err = e.cfg.Neutron.TrunkOf(ctx, e.cfg.VIFID)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("the VM's port %s: %w", e.cfg.VIFID, err)
		}
		e.trunkSeen = true
	}
	if e.cfg.Mode == neutron.ModeTrunk {
		return e.trunkMemo, e.trunkMemo, nil
	}
	return nil, e.trunkMemo, nil
}

// refreshTrunk reads the trunk again (trunk mode), after Neutron said it changed.
func (e *Engine) refreshTrunk(ctx context.Context) (*neutron.Trunk, error) {
	t, err := e.cfg.Neutron.EnsureTrunk(ctx, e.cfg.VIFID)
	if err != nil {
		return nil, fmt.Errorf("the VM's port %s: %w", e.cfg.VIFID, err)
	}
	if e.cfg.OnTrunk != nil {
		e.cfg.OnTrunk(t.ID)
	}
	e.mu.Lock()
	e.trunkMemo, e.trunkSeen = t, true
	e.mu.Unlock()
	return t, nil
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

// New checks the configuration.
func New(cfg Config) (*Engine, error) {
	if cfg.VIFID == "" {
		return nil, errors.New("engine: the VM's port (vif-id) is not known")
	}
	if cfg.Bridge == "" {
		return nil, errors.New("engine: no OVS bridge given")
	}
	if cfg.Store == nil || cfg.Neutron == nil || cfg.Switch == nil {
		return nil, errors.New("engine: state, neutron and switch are required")
	}
	if cfg.Mode == "" {
		cfg.Mode = neutron.ModeTrunk
	}
	if cfg.Links == nil {
		cfg.Links = Netlink{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 20 * time.Second
	}
	if cfg.RollbackTimeout <= 0 {
		cfg.RollbackTimeout = 30 * time.Second
	}
	return &Engine{cfg: cfg, log: cfg.Log}, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

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
	// AtRest leaves a prepared attachment to no process (PID 0): a daemon's IPAM or pool
	// holds it across restarts. Otherwise it stays this process's until plumbed, and a
	// crash before that makes it an orphan for Recover.
	AtRest bool
	Pool   string // the pool the attachment belongs to while it waits for a container
}

// undoStack holds the steps that undo what an operation did so far.
type undoStack []func(context.Context) error

func (u *undoStack) push(f func(context.Context) error) { *u = append(*u, f) }

// unwind runs the undo steps in reverse with a context of its own (the caller's may be
// what ran out). A failing step stops it: what remains is recorded for gc.
func (e *Engine) unwind(ctx context.Context, u undoStack, att *state.Attachment, errp *error) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RollbackTimeout)
	defer cancel()
	for i := len(u) - 1; i >= 0; i-- {
		if uerr := u[i](uctx); uerr != nil {
			// The returned error says it too: a CLI user reads it once, a daemon logs it.
			e.log.Info("rollback step failed; gc will finish it", "attachment", idOf(att), "err", uerr)
			*errp = fmt.Errorf("%w (and rollback failed: %v; run ovn-docker gc)", *errp, uerr)
			// Recorded like a failed detach, so that ps shows it and gc or Recover
			// release it while this process still lives.
			if att != nil {
				// A context of its own: uctx may be what ran out.
				rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				_ = e.failed(rctx, att, *errp)
				rcancel()
			}
			return
		}
	}
}

// Attach makes one container interface: Prepare, then Plumb. On failure nothing it made
// remains.
func (e *Engine) Attach(ctx context.Context, req Request) (*state.Attachment, error) {
	if err := checkRequest(req, true); err != nil {
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
		Mode: e.cfg.Mode, VLAN: att.VLAN, SecurityGroups: req.SecurityGroups,
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

func (e *Engine) accessPort(att *state.Attachment) ovs.AccessPort {
	return ovs.AccessPort{Bridge: e.cfg.Bridge, Name: att.HostIf, Tag: att.VLAN,
		ExternalIDs: map[string]string{ExtAttachment: att.ID, ExtPort: att.PortID, ExtVLAN: fmt.Sprint(att.VLAN),
			ExtNetwork: att.NetworkID, ExtContainer: att.Container}}
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

// vlanOf reads the attachment's VLAN from the state (addSubport may have changed it).
func (e *Engine) vlanOf(ctx context.Context, id string, def int) int {
	v := def
	_ = e.cfg.Store.View(ctx, func(st *state.State) error {
		if a := st.Attachments[id]; a != nil {
			v = a.VLAN
		}
		return nil
	})
	return v
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
	if err := e.setPhase(ctx, att, phase, func(a *state.Attachment) { a.PID = 0 }); err != nil {
		return att, err
	}
	e.fault("attached")
	e.log.Info("attached", "attachment", att.ID, "network", att.NetworkName, "vlan", att.VLAN,
		"port", att.PortID, "mac", att.MAC, "ips", att.IPs, "ifname", att.IfName)
	return att, nil
}

// Unplumb removes the local part of an attachment (access port, veth) and leaves its
// Neutron part prepared: Docker's DeleteEndpoint, before its IPAM releases the address.
func (e *Engine) Unplumb(ctx context.Context, attID string) error {
	att := &state.Attachment{ID: attID}
	err := e.setPhase(ctx, att, state.PhasePlumb, func(a *state.Attachment) { a.PID = os.Getpid() })
	if err != nil {
		return err
	}
	if att.HostIf != "" {
		if err := e.cfg.Switch.DeletePort(ctx, e.cfg.Bridge, att.HostIf); err != nil {
			return e.failed(ctx, att, fmt.Errorf("delete access port %s: %w", att.HostIf, err))
		}
		if err := e.cfg.Links.Delete(ctx, att.HostIf); err != nil {
			return e.failed(ctx, att, fmt.Errorf("delete veth %s: %w", att.HostIf, err))
		}
	}
	return e.setPhase(ctx, att, state.PhasePrepared, func(a *state.Attachment) {
		a.HostIf, a.PeerIf, a.NetNS, a.PID, a.Error = "", "", "", 0, ""
	})
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (e *Engine) reserve(ctx context.Context, req Request, trunk *neutron.Trunk) (*state.Attachment, error) {
	atts, err := e.reserveN(ctx, req, trunk, 1)
	if err != nil {
		return nil, err
	}
	return atts[0], nil
}

// reserveN records n attachments with n VLANs free in the state, on the bridge and on the
// trunk, in one state update.
func (e *Engine) reserveN(ctx context.Context, req Request, trunk *neutron.Trunk, n int) ([]*state.Attachment, error) {
	tags, err := e.cfg.Switch.UsedTags(ctx, e.cfg.Bridge)
	if err != nil {
		return nil, fmt.Errorf("read VLANs in use on %s: %w", e.cfg.Bridge, err)
	}
	now := time.Now().UTC()
	atts := make([]*state.Attachment, n)
	for i := range atts {
		id, err := newID()
		if err != nil {
			return nil, err
		}
		atts[i] = &state.Attachment{
			ID: id, Owner: req.Owner, OwnerKind: req.OwnerKind, Container: req.Container, ContainerName: req.ContainerName,
			NetworkID: req.Network.ID, NetworkName: req.Network.Name, IfName: req.IfName, NetNS: req.NetNS,
			// Written before the port is asked for: a crash from here on may leave one.
			Mode: string(e.cfg.Mode), Phase: state.PhasePort, PID: os.Getpid(), Created: now, Updated: now,
			MTU: req.Network.MTU, Pool: req.Pool,
		}
	}
	err = e.cfg.Store.Update(ctx, func(st *state.State) error {
		if st.VIFID != "" && st.VIFID != e.cfg.VIFID {
			return fmt.Errorf("state in %s belongs to the VM with port %s, not %s: each VM needs its own state directory",
				e.cfg.Store.Dir(), st.VIFID, e.cfg.VIFID)
		}
		st.VIFID = e.cfg.VIFID
		for _, a := range st.Attachments {
			if a.Owner == req.Owner && req.IfName != "" && a.IfName == req.IfName {
				return fmt.Errorf("%s of %s is already attached (attachment %s)", req.IfName, req.Owner, a.ID)
			}
		}
		used := st.UsedVLANs()
		var onTrunk map[int]bool
		if trunk != nil {
			onTrunk = trunk.VLANs()
		}
		for _, att := range atts {
			inUse := func(v int) bool {
				_, held := used[v]
				return held || tags[v] || onTrunk[v]
			}
			v, err := vlan.Pick(inUse, st.LastVLAN)
			if err != nil {
				return err
			}
			att.VLAN = v
			st.LastVLAN = v
			used[v] = att.ID
			st.Attachments[att.ID] = att
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return atts, nil
}

// addSubport adds the port to the trunk, choosing another VLAN when the trunk turns out
// to use this one already (someone added a subport behind ovn-docker's back).
func (e *Engine) addSubport(ctx context.Context, att *state.Attachment, trunk *neutron.Trunk, portID string) error {
	taken := map[int]bool{}
	for tries := 0; ; tries++ {
		err := e.addSubportCall(ctx, trunk.ID, portID, att.VLAN)
		if err == nil {
			return nil
		}
		if errors.Is(err, neutron.ErrNotFound) && tries == 0 {
			// The trunk this engine knew is gone (deleted behind its back): find or make
			// the VM port's trunk again and record it before using it.
			fresh, ferr := e.refreshTrunk(ctx)
			if ferr != nil || fresh.ID == trunk.ID {
				return fmt.Errorf("subport with vlan %d: %w", att.VLAN, err)
			}
			trunk = fresh
			if err := e.setPhase(ctx, att, att.Phase, func(a *state.Attachment) { a.TrunkID = fresh.ID }); err != nil {
				return err
			}
			continue
		}
		if !errors.Is(err, neutron.ErrVLANInUse) || tries >= 3 {
			return fmt.Errorf("subport with vlan %d: %w", att.VLAN, err)
		}
		taken[att.VLAN] = true
		// The trunk changed since it was read, and the bridge may have too: the next
		// VLAN must be free on both, like the first.
		fresh, err := e.refreshTrunk(ctx)
		if err != nil {
			return err
		}
		onTrunk := fresh.VLANs()
		tags, err := e.cfg.Switch.UsedTags(ctx, e.cfg.Bridge)
		if err != nil {
			return fmt.Errorf("read VLANs in use on %s: %w", e.cfg.Bridge, err)
		}
		prev := att.VLAN
		err = e.cfg.Store.Update(ctx, func(st *state.State) error {
			used := st.UsedVLANs()
			v, err := vlan.Pick(func(v int) bool { _, held := used[v]; return held || taken[v] || onTrunk[v] || tags[v] }, st.LastVLAN)
			if err != nil {
				return err
			}
			st.LastVLAN = v
			a := st.Attachments[att.ID]
			if a == nil {
				return fmt.Errorf("attachment %s vanished from the state", att.ID)
			}
			a.VLAN, att.VLAN = v, v
			return nil
		})
		if err != nil {
			return err
		}
		e.log.Warn("vlan taken on the trunk outside ovn-docker; trying another", "taken", prev, "next", att.VLAN)
	}
}

// waitReady probes the interface's data path until OVN answers or ReadyTimeout passes.
// A network without DHCP on an IPv4 subnet cannot be probed: the wait is skipped.
// addSubportCall adds the subport, in a batch when the engine has a queue.
func (e *Engine) addSubportCall(ctx context.Context, trunkID, portID string, vlan int) error {
	if q := e.cfg.Subports; q != nil {
		if err := q.Add(ctx, trunkID, portID, vlan); !errors.Is(err, subports.ErrAlone) {
			return err
		}
	}
	return e.cfg.Neutron.AddSubport(ctx, trunkID, portID, vlan)
}

// removeSubportCall removes the subport, in a batch when the engine has a queue.
func (e *Engine) removeSubportCall(ctx context.Context, trunkID, portID string) error {
	if q := e.cfg.Subports; q != nil {
		if err := q.Remove(ctx, trunkID, portID); !errors.Is(err, subports.ErrAlone) {
			return err
		}
	}
	return e.cfg.Neutron.RemoveSubport(ctx, trunkID, portID)
}

func (e *Engine) waitReady(ctx context.Context, att *state.Attachment, nsPath, ifName string) error {
	if e.cfg.ReadyTimeout < 0 {
		return nil
	}
	ip, err := netip.ParseAddr(att.ProbeIP)
	if err != nil {
		e.log.Debug("no IPv4 subnet with DHCP on the network: data path not probed", "attachment", att.ID, "network", att.NetworkName)
		return nil
	}
	mac, err := net.ParseMAC(att.MAC)
	if err != nil {
		return fmt.Errorf("attachment %s: mac %q: %w", att.ID, att.MAC, err)
	}
	pctx, cancel := context.WithTimeout(ctx, e.cfg.ReadyTimeout)
	defer cancel()
	if err := e.cfg.Links.Probe(pctx, nsPath, ifName, mac, ip); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("wait for the data path of port %s: %w", att.PortID, ctx.Err())
		}
		return fmt.Errorf("the data path of port %s is not live after %s (%w): OVN on the hypervisor has not bound it", att.PortID, e.cfg.ReadyTimeout, err)
	}
	return nil
}

// Detach releases one attachment: access port, veth, subport, Neutron port, VLAN. Every
// step tolerates what is already gone, so Detach can be repeated after a failure.
func (e *Engine) Detach(ctx context.Context, attID string) error {
	var att *state.Attachment
	err := e.cfg.Store.Update(ctx, func(st *state.State) error {
		a := st.Attachments[attID]
		if a == nil {
			return nil
		}
		// release reads the phase the attachment had: reserved means no port to look for.
		c := *a
		att = &c
		a.Phase, a.PID, a.Updated = state.PhaseDetaching, os.Getpid(), time.Now().UTC()
		return nil
	})
	if err != nil || att == nil {
		return err
	}
	return e.release(ctx, att)
}

// release undoes everything an attachment may have made, whatever its phase.
func (e *Engine) release(ctx context.Context, att *state.Attachment) error {
	if att.HostIf != "" {
		if err := e.cfg.Switch.DeletePort(ctx, e.cfg.Bridge, att.HostIf); err != nil {
			return e.failed(ctx, att, fmt.Errorf("delete access port %s: %w", att.HostIf, err))
		}
		e.fault("detach-ovs")
		if err := e.cfg.Links.Delete(ctx, att.HostIf); err != nil {
			return e.failed(ctx, att, fmt.Errorf("delete veth %s: %w", att.HostIf, err))
		}
		e.fault("detach-veth")
	}
	portID := att.PortID
	if portID == "" && att.Phase != state.PhaseReserved {
		// The port may exist without the state knowing its ID.
		if p, err := e.cfg.Neutron.PortByAttachment(ctx, e.cfg.VIFID, att.ID); err == nil {
			portID = p.ID
		} else if !errors.Is(err, neutron.ErrNotFound) {
			return e.failed(ctx, att, fmt.Errorf("find the port of attachment %s: %w", att.ID, err))
		}
	}
	if portID != "" {
		if att.TrunkID != "" {
			if err := e.removeSubportCall(ctx, att.TrunkID, portID); err != nil {
				return e.failed(ctx, att, fmt.Errorf("remove subport %s from trunk %s: %w", portID, att.TrunkID, err))
			}
			e.fault("detach-subport")
		}
		if err := e.cfg.Neutron.DeletePort(ctx, portID); err != nil {
			return e.failed(ctx, att, fmt.Errorf("delete neutron port %s: %w", portID, err))
		}
		e.fault("detach-port")
	}
	if err := e.forget(ctx, att.ID); err != nil {
		return err
	}
	e.log.Info("detached", "attachment", att.ID, "network", att.NetworkName, "vlan", att.VLAN, "port", portID)
	return nil
}

// failed records a failed release so that ps and gc can show it, and returns err.
func (e *Engine) failed(ctx context.Context, att *state.Attachment, err error) error {
	_ = e.cfg.Store.Update(context.WithoutCancel(ctx), func(st *state.State) error {
		if a := st.Attachments[att.ID]; a != nil {
			a.Error, a.PID = err.Error(), 0
		}
		return nil
	})
	return err
}

func (e *Engine) forget(ctx context.Context, id string) error {
	return e.cfg.Store.Update(ctx, func(st *state.State) error {
		delete(st.Attachments, id)
		return nil
	})
}

func (e *Engine) deleteOrphanPort(ctx context.Context, attID string) error {
	p, err := e.cfg.Neutron.PortByAttachment(ctx, e.cfg.VIFID, attID)
	if errors.Is(err, neutron.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return e.cfg.Neutron.DeletePort(ctx, p.ID)
}

func (e *Engine) setPhase(ctx context.Context, att *state.Attachment, p state.Phase, change func(*state.Attachment)) error {
	return e.cfg.Store.Update(ctx, func(st *state.State) error {
		a := st.Attachments[att.ID]
		if a == nil {
			return fmt.Errorf("attachment %s vanished from the state", att.ID)
		}
		if change != nil {
			change(a)
		}
		a.Phase, a.Updated = p, time.Now().UTC()
		*att = *a
		return nil
	})
}

// Label names the user's container on an attachment, in the state and on the Neutron
// port's tags. Tags cost a call of their own, so front-ends call this once the
// container runs; a failure only leaves the tags out.
func (e *Engine) Label(ctx context.Context, attID, container, containerName string) error {
	var portID string
	err := e.cfg.Store.Update(ctx, func(st *state.State) error {
		a := st.Attachments[attID]
		if a == nil {
			return fmt.Errorf("no attachment %s", attID)
		}
		a.Container, a.ContainerName, a.Updated = container, containerName, time.Now().UTC()
		portID = a.PortID
		return nil
	})
	if err != nil || portID == "" {
		return err
	}
	tags := []string{neutron.Tag, neutron.TagVM + e.cfg.VIFID}
	if container != "" {
		tags = append(tags, neutron.TagContainer+short(container))
	}
	return e.cfg.Neutron.SetTags(ctx, portID, tags)
}

// Attachments returns the state's attachments, oldest first.
func (e *Engine) Attachments(ctx context.Context) ([]*state.Attachment, error) {
	var out []*state.Attachment
	err := e.cfg.Store.View(ctx, func(st *state.State) error {
		out = st.Sorted()
		return nil
	})
	return out, err
}

func (e *Engine) observe(phase string, since time.Time) {
	if e.cfg.Observe != nil {
		e.cfg.Observe(phase, time.Since(since))
	}
}

func (e *Engine) fault(step string) {
	if e.cfg.Fault != nil {
		e.cfg.Fault(step)
	}
}

// fillFromPort records the port's MAC, its addresses with their subnets' prefixes, and
// one gateway per IP family (used only when the interface carries the default route).
func fillFromPort(a *state.Attachment, p *neutron.Port, n *neutron.Network) {
	a.PortID, a.MAC = p.ID, p.MAC.String()
	a.IPs, a.Gateways, a.ProbeIP = nil, nil, ""
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
		if ok && sub.Gateway.IsValid() && !gwSeen[sub.IPVersion] {
			gwSeen[sub.IPVersion] = true
			a.Gateways = append(a.Gateways, sub.Gateway.String())
		}
	}
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

func newID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random attachment id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func idOf(a *state.Attachment) string {
	if a == nil {
		return ""
	}
	return a.ID
}
