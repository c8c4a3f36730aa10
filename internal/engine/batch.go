package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// PrepareBatch does Prepare for n interfaces on one network with two Neutron calls in all:
// one bulk port creation and one add_subports. The attachments end prepared, at rest,
// in req.Pool. On failure nothing it made remains.
func (e *Engine) PrepareBatch(ctx context.Context, req Request, n int) (atts []*state.Attachment, err error) {
	if err := checkRequest(req, false); err != nil {
		return nil, err
	}
	if err := e.checkProject(ctx, req.Network); err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("prepare batch of %d", n)
	}
	var undo undoStack
	defer func() {
		if err != nil {
			var first *state.Attachment
			if len(atts) > 0 {
				first = atts[0]
			}
			e.unwind(ctx, undo, first, &err)
			atts = nil
		}
	}()
	trunk, seen, err := e.trunk(ctx)
	if err != nil {
		return nil, err
	}
	atts, err = e.reserveN(ctx, req, seen, n)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(atts))
	for i, a := range atts {
		ids[i] = a.ID
	}
	undo.push(func(ctx context.Context) error { return e.forgetAll(ctx, ids) })

	reqs := make([]neutron.PortRequest, len(atts))
	for i, a := range atts {
		reqs[i] = neutron.PortRequest{NetworkID: req.Network.ID, AttachmentID: a.ID, VIFID: e.cfg.VIFID,
			Mode: e.cfg.Mode, VLAN: a.VLAN, SecurityGroups: req.SecurityGroups, Options: req.Port}
		if e.cfg.Mode == neutron.ModeBindingProfile {
			if reqs[i].HostID, err = e.parentHost(ctx); err != nil {
				return atts, err
			}
			reqs[i].ProjectID = req.Network.ProjectID
		}
	}
	t0 := time.Now()
	ports, err := e.cfg.Neutron.CreatePorts(ctx, reqs)
	if err != nil {
		// A bulk create is all or nothing, but a lost answer may hide ports that exist.
		undo.push(func(ctx context.Context) error {
			var errs []error
			for _, id := range ids {
				errs = append(errs, e.deleteOrphanPort(ctx, id))
			}
			return errors.Join(errs...)
		})
		return atts, fmt.Errorf("neutron ports for %d attachments: %w", n, err)
	}
	if len(ports) != len(atts) {
		err = fmt.Errorf("neutron made %d ports for %d requests", len(ports), len(atts))
	}
	byName := map[string]*neutron.Port{}
	for i := range ports {
		p := &ports[i]
		byName[p.Name] = p
		undo.push(func(ctx context.Context) error { return e.cfg.Neutron.DeletePort(ctx, p.ID) })
	}
	if err != nil {
		return atts, err
	}
	next := state.PhasePrepared
	if trunk != nil {
		next = state.PhaseSubport
	}
	err = e.setPhases(ctx, atts, next, func(a *state.Attachment) error {
		p := byName[neutron.PortName(a.ID)]
		if p == nil {
			return fmt.Errorf("neutron's answer lacks the port of attachment %s", a.ID)
		}
		fillFromPort(a, p, req.Network)
		if trunk != nil {
			a.TrunkID = trunk.ID
		}
		return nil
	})
	if err != nil {
		return atts, err
	}
	e.observe("port", t0)
	e.fault("port")

	if trunk != nil {
		t0 = time.Now()
		subs := make([]neutron.Subport, len(atts))
		for i, a := range atts {
			subs[i] = neutron.Subport{PortID: a.PortID, VLAN: a.VLAN}
			a := a
			undo.push(func(ctx context.Context) error { return e.cfg.Neutron.RemoveSubport(ctx, trunk.ID, a.PortID) })
		}
		if err = e.cfg.Neutron.AddSubports(ctx, trunk.ID, subs); errors.Is(err, neutron.ErrVLANInUse) {
			// Someone took one of the VLANs behind ovn-docker's back: one by one, each
			// choosing again when it must.
			err = nil
			for _, a := range atts {
				if err = e.addSubport(ctx, a, trunk, a.PortID); err != nil {
					break
				}
			}
		}
		if err != nil {
			return atts, err
		}
		e.observe("subport", t0)
		e.fault("subport")
	}
	err = e.setPhases(ctx, atts, state.PhasePrepared, func(a *state.Attachment) error {
		if req.AtRest {
			a.PID = 0
		}
		return nil
	})
	return atts, err
}

// Take moves a ready attachment's container end (its pair made and probed in advance)
// into req.NetNS as req.IfName with Neutron's MAC, addresses and MTU, and the default
// route with req.DefaultRoute: the warm path, with no Neutron call. The caller has
// claimed the attachment (see Claim). On failure the attachment is ready again.
func (e *Engine) Take(ctx context.Context, attID string, req Request) (*state.Attachment, error) {
	att := &state.Attachment{ID: attID}
	if err := e.guard(ctx); err != nil {
		e.unclaim(context.WithoutCancel(ctx), attID)
		return nil, err
	}
	if err := e.setPhase(ctx, att, state.PhasePlace, func(a *state.Attachment) {
		a.IfName, a.NetNS, a.PID = req.IfName, req.NetNS, os.Getpid()
		if req.Owner != "" {
			a.Owner, a.OwnerKind = req.Owner, req.OwnerKind
		}
		if req.Container != "" || req.ContainerName != "" {
			a.Container, a.ContainerName = req.Container, req.ContainerName
		}
	}); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := e.cfg.Links.MoveIn(ctx, specOf(att, req.NetNS, req.DefaultRoute)); err != nil {
		e.unclaim(context.WithoutCancel(ctx), att.ID)
		return nil, fmt.Errorf("move %s into %s: %w", att.PeerIf, req.NetNS, err)
	}
	e.observe("place", t0)
	e.fault("place")
	if err := e.setPhase(ctx, att, state.PhaseAttached, func(a *state.Attachment) { a.PID = 0 }); err != nil {
		return nil, err
	}
	e.log.Info("attached from the pool", "attachment", att.ID, "network", att.NetworkName, "vlan", att.VLAN,
		"port", att.PortID, "ifname", att.IfName)
	return att, nil
}

// Claim reserves a ready attachment of the pool for req.Owner, so that no one else takes
// it. It returns nil when the pool has none.
func (e *Engine) Claim(ctx context.Context, pool string, req Request) (*state.Attachment, error) {
	if req.Port.OwnPort() {
		return nil, nil // the pools' ports have Neutron's defaults: the cold path makes one
	}
	var got *state.Attachment
	err := e.cfg.Store.Update(ctx, func(st *state.State) error {
		for _, a := range st.Sorted() {
			if a.Pool == pool && a.OwnerKind == state.OwnerPool && a.Phase == state.PhaseReady && a.PID == 0 {
				a.Owner, a.OwnerKind, a.PID, a.Updated = req.Owner, req.OwnerKind, os.Getpid(), time.Now().UTC()
				c := *a
				got = &c
				return nil
			}
		}
		return nil
	})
	return got, err
}

// unclaim gives a claimed attachment back to its pool.
func (e *Engine) unclaim(ctx context.Context, id string) {
	_ = e.cfg.Store.Update(ctx, func(st *state.State) error {
		if a := st.Attachments[id]; a != nil {
			a.Owner, a.OwnerKind, a.PID, a.Phase, a.NetNS, a.IfName = a.Pool, state.OwnerPool, 0, state.PhaseReady, "", ""
		}
		return nil
	})
}

// Return takes an attached interface back from its container, scrubbed (down, no
// addresses, the pair's own name again), into the pool. If the container's namespace is
// gone the pair died with it: a new pair is made and plumbed, with the same Neutron port.
func (e *Engine) Return(ctx context.Context, attID, pool string) error {
	att := &state.Attachment{ID: attID}
	if err := e.setPhase(ctx, att, state.PhasePlace, func(a *state.Attachment) { a.PID = os.Getpid() }); err != nil {
		return err
	}
	err := e.cfg.Links.Reclaim(ctx, att.NetNS, att.IfName, att.PeerIf)
	if errors.Is(err, netdev.ErrGone) {
		// Re-plumb: the old access port points at a device that no longer exists.
		if err = e.cfg.Switch.DeletePort(ctx, e.cfg.Bridge, att.HostIf); err == nil {
			att, err = e.Plumb(ctx, attID, Request{Owner: pool, OwnerKind: state.OwnerPool})
		}
	}
	if err != nil {
		return e.failed(ctx, att, fmt.Errorf("return attachment %s to the pool: %w", attID, err))
	}
	return e.setPhase(ctx, att, state.PhaseReady, func(a *state.Attachment) {
		a.Owner, a.OwnerKind, a.Pool, a.PID, a.NetNS, a.IfName = pool, state.OwnerPool, pool, 0, "", ""
		a.Container, a.ContainerName, a.Error = "", "", ""
	})
}
