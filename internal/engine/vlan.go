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
