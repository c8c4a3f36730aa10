package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

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

func (e *Engine) forgetAll(ctx context.Context, ids []string) error {
	return e.cfg.Store.Update(ctx, func(st *state.State) error {
		for _, id := range ids {
			delete(st.Attachments, id)
		}
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
