package engine

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
	"github.com/ovn-docker/ovn-docker/internal/vlan"
)

// Every VLAN the engine gives an attachment is chosen by a vlanSet: the first VLAN after
// the VM's last choice (wrapping round at 4094, see vlan.Pick) that is not in use. What
// "in use" means is decided there and nowhere else.

// vlanSet is what a VLAN choice must avoid, read under the state's lock: the VLANs the
// state's attachments hold, the tags of ports on the VM's bridge (anyone's), the VLANs of
// the VM trunk's subports (anyone's) and those Neutron refused as in use, whatever the
// trunk showed.
type vlanSet struct {
	st     *state.State
	held   map[int]string // VLAN -> the attachment holding it, this choice's included
	bridge map[int]bool
	trunk  map[int]bool
	taken  map[int]bool
}

// newVLANSet gathers what is in use. st is the state under its lock; bridge, trunk and
// taken may be nil.
func newVLANSet(st *state.State, bridge map[int]bool, trunk *neutron.Trunk, taken map[int]bool) *vlanSet {
	s := &vlanSet{st: st, held: st.UsedVLANs(), bridge: bridge, taken: taken}
	if trunk != nil {
		s.trunk = trunk.VLANs()
	}
	return s
}

// inUse is the one test of a VLAN's being in use in the VM.
func (s *vlanSet) inUse(v int) bool {
	_, held := s.held[v]
	return held || s.bridge[v] || s.trunk[v] || s.taken[v]
}

// pick chooses the first VLAN free after the state's last choice, for attachment id: the
// VLAN becomes the last choice, and is in use for the set's next pick (a batch's).
func (s *vlanSet) pick(id string) (int, error) {
	v, err := vlan.Pick(s.inUse, s.st.LastVLAN)
	if err != nil {
		return 0, err
	}
	s.held[v] = id
	s.st.LastVLAN = v
	return v, nil
}

// bridgeVLANs reads the tags in use on the VM's bridge, which the state does not know all
// of (ports ovn-docker did not make).
func (e *Engine) bridgeVLANs(ctx context.Context) (map[int]bool, error) {
	tags, err := e.cfg.Switch.UsedTags(ctx, e.cfg.Bridge)
	if err != nil {
		return nil, fmt.Errorf("read VLANs in use on %s: %w", e.cfg.Bridge, err)
	}
	return tags, nil
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
	tags, err := e.bridgeVLANs(ctx)
	if err != nil {
		return nil, err
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
			MTU: req.Network.MTU, Pool: req.Pool, IPAMPool: req.IPAMPool, Secondary: req.Secondary,
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
		vlans := newVLANSet(st, tags, trunk, nil)
		for _, att := range atts {
			v, err := vlans.pick(att.ID)
			if err != nil {
				return err
			}
			att.VLAN = v
			st.Attachments[att.ID] = att
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return atts, nil
}

// repickVLAN gives an attachment another VLAN after Neutron refused its own on the trunk
// (someone added a subport behind ovn-docker's back): the trunk changed since it was
// read, and the bridge may have too, so both are read again; taken are the VLANs refused
// so far.
func (e *Engine) repickVLAN(ctx context.Context, att *state.Attachment, taken map[int]bool) error {
	fresh, err := e.refreshTrunk(ctx)
	if err != nil {
		return err
	}
	tags, err := e.bridgeVLANs(ctx)
	if err != nil {
		return err
	}
	return e.cfg.Store.Update(ctx, func(st *state.State) error {
		v, err := newVLANSet(st, tags, fresh, taken).pick(att.ID)
		if err != nil {
			return err
		}
		a := st.Attachments[att.ID]
		if a == nil {
			return fmt.Errorf("attachment %s vanished from the state", att.ID)
		}
		a.VLAN, att.VLAN = v, v
		return nil
	})
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
