package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
	"github.com/ovn-docker/ovn-docker/internal/subports"
)

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
		prev := att.VLAN
		if err := e.repickVLAN(ctx, att, taken); err != nil {
			return err
		}
		e.log.Warn("vlan taken on the trunk outside ovn-docker; trying another", "taken", prev, "next", att.VLAN)
	}
}

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
