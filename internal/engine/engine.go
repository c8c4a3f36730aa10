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
	"time"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/state"
	"github.com/ovn-docker/ovn-docker/internal/vlan"
)

// Neutron is what the engine asks of Neutron; *neutron.Client implements it.
type Neutron interface {
	CreatePort(ctx context.Context, r neutron.PortRequest) (*neutron.Port, error)
	GetPort(ctx context.Context, id string) (*neutron.Port, error)
	DeletePort(ctx context.Context, id string) error
	PortByAttachment(ctx context.Context, vifID, attachmentID string) (*neutron.Port, error)
	EnsureTrunk(ctx context.Context, parentPortID string) (*neutron.Trunk, error)
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
	CreatePair(ctx context.Context, hostName, peerName string, mtu int) error
	Delete(ctx context.Context, hostName string) error
}

// Netlink is the real Links.
type Netlink struct{}

func (Netlink) Create(ctx context.Context, s netdev.Spec) error { return netdev.Create(ctx, s) }
func (Netlink) CreatePair(ctx context.Context, h, p string, mtu int) error {
	return netdev.CreatePair(ctx, h, p, mtu)
}
func (Netlink) Delete(ctx context.Context, h string) error { return netdev.Delete(ctx, h) }

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
	VIFID   string       // the VM's Neutron port
	Bridge  string       // the VM's OVS bridge
	Mode    neutron.Mode // trunk (default) or binding-profile
	Store   *state.Store
	Neutron Neutron
	Switch  Switch
	Links   Links        // default Netlink{}
	Log     *slog.Logger // default slog.Default()
	// WaitActive bounds the wait for Neutron to report the port ACTIVE (OVN bound it on
	// the hypervisor) before the container may use it; 0 means 20 s, negative: no wait.
	WaitActive time.Duration
	// Observe, when set, is told the duration of each phase ("trunk", "reserve", "port",
	// "subport", "plumb", "active") of every attach; trunk and subport only in trunk mode.
	Observe func(phase string, d time.Duration)
	// Fault, when set, is called after each named step; tests use it to kill the process
	// there and prove that recovery leaves nothing behind.
	Fault func(step string)
}

// Engine attaches and detaches container interfaces of one VM.
type Engine struct {
	cfg Config
	log *slog.Logger
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
	if cfg.WaitActive == 0 {
		cfg.WaitActive = 20 * time.Second
	}
	return &Engine{cfg: cfg, log: cfg.Log}, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// Request asks for one container interface.
type Request struct {
	Owner          string // who holds it: the sandbox container (CLI) or Docker's endpoint
	Container      string // the user's container, when known
	ContainerName  string
	Network        *neutron.Network
	IfName         string // eth0, eth1... in the container
	NetNS          string // the container's netns; "" leaves the pair in the VM (Docker moves it)
	DefaultRoute   bool   // this interface carries the default route(s)
	SecurityGroups []string
}

// Attach makes one container interface. On failure nothing it made remains.
func (e *Engine) Attach(ctx context.Context, req Request) (att *state.Attachment, err error) {
	if req.Network == nil || req.Network.ID == "" {
		return nil, errors.New("attach: no network")
	}
	if req.Owner == "" {
		return nil, errors.New("attach: no owner")
	}
	if req.NetNS != "" && req.IfName == "" {
		return nil, errors.New("attach: no interface name")
	}
	var undo []func(context.Context) error
	defer func() {
		if err == nil {
			return
		}
		// Undo with a context of its own: the caller's may be what ran out.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](uctx); uerr != nil {
				e.log.Error("rollback step failed; gc will finish it", "attachment", idOf(att), "err", uerr)
				err = fmt.Errorf("%w (and rollback failed: %v; run ovn-docker gc)", err, uerr)
				// Recorded like a failed detach, so that ps shows it and gc or Recover
				// release it while this process still lives.
				if att != nil {
					_ = e.failed(uctx, att, err)
				}
				return
			}
		}
	}()

	// The trunk first: its subports' VLANs are in use even when no state records them.
	var trunk *neutron.Trunk
	if e.cfg.Mode == neutron.ModeTrunk {
		t0 := time.Now()
		if trunk, err = e.cfg.Neutron.EnsureTrunk(ctx, e.cfg.VIFID); err != nil {
			return nil, fmt.Errorf("the VM's port %s: %w", e.cfg.VIFID, err)
		}
		e.observe("trunk", t0)
	}

	// 1. Reserve a VLAN and record the attachment.
	t0 := time.Now()
	att, err = e.reserve(ctx, req, trunk)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func(ctx context.Context) error { return e.forget(ctx, att.ID) })
	e.observe("reserve", t0)
	e.fault("reserved")

	// 2. The Neutron port.
	t0 = time.Now()
	if err = e.setPhase(ctx, att, state.PhasePort, nil); err != nil {
		return att, err
	}
	port, err := e.cfg.Neutron.CreatePort(ctx, neutron.PortRequest{
		NetworkID: req.Network.ID, AttachmentID: att.ID, VIFID: e.cfg.VIFID,
		Mode: e.cfg.Mode, VLAN: att.VLAN, SecurityGroups: req.SecurityGroups,
	})
	if err != nil {
		// A timeout may hide a port Neutron did make: look for it by name on the way out.
		undo = append(undo, func(ctx context.Context) error { return e.deleteOrphanPort(ctx, att.ID) })
		return att, fmt.Errorf("neutron port for attachment %s: %w", att.ID, err)
	}
	undo = append(undo, func(ctx context.Context) error { return e.cfg.Neutron.DeletePort(ctx, port.ID) })
	if err = e.setPhase(ctx, att, state.PhasePort, func(a *state.Attachment) { fillFromPort(a, port, req.Network, req.DefaultRoute) }); err != nil {
		return att, err
	}
	e.observe("port", t0)
	e.fault("port")

	// 3. The subport.
	if trunk != nil {
		t0 = time.Now()
		if err = e.setPhase(ctx, att, state.PhaseSubport, func(a *state.Attachment) { a.TrunkID = trunk.ID }); err != nil {
			return att, err
		}
		undo = append(undo, func(ctx context.Context) error { return e.cfg.Neutron.RemoveSubport(ctx, trunk.ID, port.ID) })
		if err = e.addSubport(ctx, att, trunk, port.ID); err != nil {
			return att, err
		}
		e.observe("subport", t0)
		e.fault("subport")
	}

	// 4. The veth pair and the access port.
	t0 = time.Now()
	host, peer := netdev.HostName(port.ID), netdev.PeerName(port.ID)
	if err = e.setPhase(ctx, att, state.PhasePlumb, func(a *state.Attachment) { a.HostIf, a.PeerIf = host, peer }); err != nil {
		return att, err
	}
	undo = append(undo, func(ctx context.Context) error { return e.cfg.Links.Delete(ctx, host) })
	if req.NetNS != "" {
		err = e.cfg.Links.Create(ctx, specOf(att, req.NetNS))
	} else {
		err = e.cfg.Links.CreatePair(ctx, host, peer, att.MTU)
	}
	if err != nil {
		return att, fmt.Errorf("veth for %s: %w", req.IfName, err)
	}
	e.fault("veth")
	undo = append(undo, func(ctx context.Context) error { return e.cfg.Switch.DeletePort(ctx, e.cfg.Bridge, host) })
	if err = e.cfg.Switch.AddAccessPort(ctx, ovs.AccessPort{Bridge: e.cfg.Bridge, Name: host, Tag: att.VLAN,
		ExternalIDs: map[string]string{ExtAttachment: att.ID, ExtPort: port.ID, ExtVLAN: fmt.Sprint(att.VLAN),
			ExtNetwork: req.Network.ID, ExtContainer: req.Container}}); err != nil {
		return att, fmt.Errorf("access port %s tag %d on %s: %w", host, att.VLAN, e.cfg.Bridge, err)
	}
	e.observe("plumb", t0)
	e.fault("ovs")

	// 5. Neutron says ACTIVE once OVN bound the port on the hypervisor: only then do
	// packets flow, so only then may the container start.
	t0 = time.Now()
	if err = e.waitActive(ctx, port.ID); err != nil {
		return att, err
	}
	e.observe("active", t0)

	phase := state.PhaseAttached
	if req.NetNS == "" {
		phase = state.PhaseReady
	}
	if err = e.setPhase(ctx, att, phase, func(a *state.Attachment) { a.PID = 0 }); err != nil {
		return att, err
	}
	e.fault("attached")
	e.log.Info("attached", "attachment", att.ID, "network", req.Network.Name, "vlan", att.VLAN,
		"port", port.ID, "mac", att.MAC, "ips", att.IPs, "ifname", att.IfName)
	return att, nil
}

func (e *Engine) reserve(ctx context.Context, req Request, trunk *neutron.Trunk) (*state.Attachment, error) {
	tags, err := e.cfg.Switch.UsedTags(ctx, e.cfg.Bridge)
	if err != nil {
		return nil, fmt.Errorf("read VLANs in use on %s: %w", e.cfg.Bridge, err)
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	att := &state.Attachment{
		ID: id, Owner: req.Owner, Container: req.Container, ContainerName: req.ContainerName,
		NetworkID: req.Network.ID, NetworkName: req.Network.Name, IfName: req.IfName, NetNS: req.NetNS,
		Mode: string(e.cfg.Mode), Phase: state.PhaseReserved, PID: os.Getpid(), Created: now, Updated: now,
		MTU: req.Network.MTU,
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
		st.Attachments[att.ID] = att
		return nil
	})
	if err != nil {
		return nil, err
	}
	return att, nil
}

// addSubport adds the port to the trunk, choosing another VLAN when the trunk turns out
// to use this one already (someone added a subport behind ovn-docker's back).
func (e *Engine) addSubport(ctx context.Context, att *state.Attachment, trunk *neutron.Trunk, portID string) error {
	taken := map[int]bool{}
	for tries := 0; ; tries++ {
		err := e.cfg.Neutron.AddSubport(ctx, trunk.ID, portID, att.VLAN)
		if err == nil {
			return nil
		}
		if !errors.Is(err, neutron.ErrVLANInUse) || tries >= 3 {
			return fmt.Errorf("subport with vlan %d: %w", att.VLAN, err)
		}
		taken[att.VLAN] = true
		// The trunk changed since it was read, and the bridge may have too: the next
		// VLAN must be free on both, like the first.
		fresh, err := e.cfg.Neutron.EnsureTrunk(ctx, e.cfg.VIFID)
		if err != nil {
			return fmt.Errorf("the VM's port %s: %w", e.cfg.VIFID, err)
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

func (e *Engine) waitActive(ctx context.Context, portID string) error {
	if e.cfg.WaitActive < 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.WaitActive)
	defer cancel()
	delay := 50 * time.Millisecond
	for {
		p, err := e.cfg.Neutron.GetPort(ctx, portID)
		if err == nil && p.Status == "ACTIVE" {
			return nil
		}
		select {
		case <-ctx.Done():
			status := "unknown"
			if p != nil {
				status = p.Status
			}
			if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				status = err.Error()
			}
			return fmt.Errorf("port %s did not become ACTIVE within %s (status %s): OVN has not bound it on the hypervisor", portID, e.cfg.WaitActive, status)
		case <-time.After(delay):
		}
		if delay < 400*time.Millisecond {
			delay *= 2
		}
	}
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
		a.Phase, a.PID, a.Updated = state.PhaseDetaching, os.Getpid(), time.Now().UTC()
		c := *a
		att = &c
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
			if err := e.cfg.Neutron.RemoveSubport(ctx, att.TrunkID, portID); err != nil {
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

func fillFromPort(a *state.Attachment, p *neutron.Port, n *neutron.Network, defaultRoute bool) {
	a.PortID, a.MAC = p.ID, p.MAC.String()
	a.IPs, a.Gateways = nil, nil
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
		if defaultRoute && ok && sub.Gateway.IsValid() && !gwSeen[sub.IPVersion] {
			gwSeen[sub.IPVersion] = true
			a.Gateways = append(a.Gateways, sub.Gateway.String())
		}
	}
}

func specOf(a *state.Attachment, netns string) netdev.Spec {
	s := netdev.Spec{HostName: a.HostIf, PeerName: a.PeerIf, NetNS: netns, IfName: a.IfName, MTU: a.MTU}
	s.MAC, _ = net.ParseMAC(a.MAC)
	for _, ip := range a.IPs {
		if p, err := netip.ParsePrefix(ip); err == nil {
			s.Addrs = append(s.Addrs, net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
		}
	}
	for _, g := range a.Gateways {
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
