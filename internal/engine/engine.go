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
//
// The engine owns the state file: front ends read it through its Records (attachments by
// ID, owner, kind or network; the pools' policies; the Docker plugin's records) and
// change attachments only by asking the engine. Files by concern: attach.go (Attach,
// Prepare, Plumb, Label), detach.go, trunk.go, vlan.go (the one decision of which VLANs
// are in use), convert.go (Neutron's port to the state's attachment and netdev's spec),
// batch.go (pools' bulk work), verify.go (an interface against the world), gc.go, recover.go, repair.go, records.go, replug.go (an
// attached interface into its owner's new namespace, same port).
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
	"sync"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/probe"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Neutron is what the engine asks of Neutron; *neutron.Client implements it.
type Neutron interface {
	CreatePort(ctx context.Context, r neutron.PortRequest) (*neutron.Port, error)
	// CreatePorts makes many ports in one call, all or none (a pool's batch).
	CreatePorts(ctx context.Context, rs []neutron.PortRequest) ([]neutron.Port, error)
	GetPort(ctx context.Context, id string) (*neutron.Port, error)
	DeletePort(ctx context.Context, id string) error
	PortByAttachment(ctx context.Context, vifID, attachmentID string) (*neutron.Port, error)
	// VMPorts lists the ports ovn-docker made for the VM (the collector's scan).
	VMPorts(ctx context.Context, vifID string) ([]neutron.Port, error)
	EnsureTrunk(ctx context.Context, parentPortID string) (*neutron.Trunk, error)
	TrunkOf(ctx context.Context, parentPortID string) (*neutron.Trunk, error)
	AddSubport(ctx context.Context, trunkID, portID string, vlan int) error
	// AddSubports adds many subports in one call (a pool's batch).
	AddSubports(ctx context.Context, trunkID string, subs []neutron.Subport) error
	RemoveSubport(ctx context.Context, trunkID, portID string) error
	SetTags(ctx context.Context, portID string, tags []string) error
	SetDNSName(ctx context.Context, portID, name string) error
	// SetFixedIPs replaces a port's addresses (Readdress).
	SetFixedIPs(ctx context.Context, portID string, fs []neutron.FixedIPRequest) (*neutron.Port, error)
	// RouterPortAt finds the router port holding a subnet's gateway (a readiness proof
	// where no DHCP answers); none is neutron.ErrNotFound.
	RouterPortAt(ctx context.Context, networkID string, ip netip.Addr) (*neutron.Port, error)
	// Neighbors lists up to limit enabled ports of a network, one page (a readiness proof
	// where neither DHCP nor a router answers).
	Neighbors(ctx context.Context, networkID string, limit int) ([]neutron.Neighbor, error)
}

// Switch is the VM's Open vSwitch; *ovs.Client implements it.
type Switch interface {
	AddAccessPort(ctx context.Context, p ovs.AccessPort) error
	DeletePort(ctx context.Context, bridge, name string) error
	UsedTags(ctx context.Context, bridge string) (map[int]bool, error)
	// Ports lists the bridge's ports with their external IDs (the collector's scan, a
	// pool's check of its interfaces).
	Ports(ctx context.Context, bridge string) ([]ovs.PortInfo, error)
}

// Links makes and removes veth pairs; Netlink implements it with the netdev package.
type Links interface {
	Create(ctx context.Context, s netdev.Spec) error
	CreatePair(ctx context.Context, hostName, peerName string, mtu int, mac net.HardwareAddr) error
	Delete(ctx context.Context, hostName string) error
	// Probe proves the data path of an interface (see package probe): in the netns at
	// nsPath ("" for the VM's), from ifName with the port's MAC, OVN must offer ip by
	// DHCP, or for IPv6 by DHCPv6 (:: for a stateless subnet: any answer).
	Probe(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, ip netip.Addr) error
	// ProbeGateway proves it where no DHCP answers: the gateway's router port answers
	// ARP or a neighbor solicitation, or OVN's router an RS, or OVN's switch ARP or NS
	// for another port's address (see GatewayProof).
	ProbeGateway(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, g GatewayProof) error
	// MoveIn moves a prepared pair's container end into a container (a pool's warm
	// attach); Reclaim takes it back, scrubbed, or says netdev.ErrGone.
	MoveIn(ctx context.Context, s netdev.Spec) error
	Reclaim(ctx context.Context, nsPath, ifName, peerName string) error
	// List names the VM's links whose names start with prefix (the collector's scan).
	List(ctx context.Context, prefix string) ([]string, error)
	// Inspect reads a container interface as it is now (Verify); gone is netdev.ErrGone.
	Inspect(ctx context.Context, nsPath, ifName string) (*netdev.Live, error)
}

// The real backends implement the whole interfaces.
var (
	_ Neutron = (*neutron.Client)(nil)
	_ Switch  = (*ovs.Client)(nil)
	_ Links   = Netlink{}
)

// Netlink is the real Links.
type Netlink struct{}

func (Netlink) Create(ctx context.Context, s netdev.Spec) error { return netdev.Create(ctx, s) }

func (Netlink) CreatePair(ctx context.Context, h, p string, mtu int, mac net.HardwareAddr) error {
	return netdev.CreatePairMAC(ctx, h, p, mtu, mac)
}

func (Netlink) Delete(ctx context.Context, h string) error { return netdev.Delete(ctx, h) }

func (Netlink) Probe(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, ip netip.Addr) error {
	if ip.Is6() {
		return probe.DHCPv6(ctx, nsPath, ifName, mac, ip)
	}
	return probe.DHCP(ctx, nsPath, ifName, mac, ip)
}

func (Netlink) MoveIn(ctx context.Context, s netdev.Spec) error { return netdev.MoveIn(ctx, s) }

func (Netlink) Reclaim(ctx context.Context, nsPath, ifName, peerName string) error {
	return netdev.Reclaim(ctx, nsPath, ifName, peerName)
}

func (Netlink) List(ctx context.Context, prefix string) ([]string, error) {
	return netdev.List(ctx, prefix)
}

func (Netlink) Inspect(ctx context.Context, nsPath, ifName string) (*netdev.Live, error) {
	return netdev.Inspect(ctx, nsPath, ifName)
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
	// Guard, when set, is made sure of before any container's plumbing.
	Guard Guard
}

// SubportQueue batches trunk changes; *subports.Batcher implements it. An error that is
// subports.ErrAlone asks the caller to make the change by itself.
type SubportQueue interface {
	Add(ctx context.Context, trunkID, portID string, vlan int) error
	Remove(ctx context.Context, trunkID, portID string) error
}

// Engine attaches and detaches container interfaces of one VM.
type Engine struct {
	// Records are what the front ends read of the state (and the little they write).
	*Records

	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	project   string         // the VM port's project, once known
	host      string         // the VM port's binding host, once read (binding-profile mode)
	trunkSeen bool           // the trunk below was read (it may be nil in binding-profile mode)
	trunkMemo *neutron.Trunk // the VM port's trunk: its ID does not change
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
	return &Engine{Records: NewRecords(cfg.Store), cfg: cfg, log: cfg.Log}, nil
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

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

// setPhases is setPhase for several attachments in one state update.
func (e *Engine) setPhases(ctx context.Context, atts []*state.Attachment, p state.Phase, change func(*state.Attachment) error) error {
	return e.cfg.Store.Update(ctx, func(st *state.State) error {
		now := time.Now().UTC()
		for _, att := range atts {
			a := st.Attachments[att.ID]
			if a == nil {
				return fmt.Errorf("attachment %s vanished from the state", att.ID)
			}
			if change != nil {
				if err := change(a); err != nil {
					return err
				}
			}
			a.Phase, a.Updated = p, now
			*att = *a
		}
		return nil
	})
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

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
