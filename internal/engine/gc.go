package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Owners tells the collector whether the owner of an attachment at rest still exists
// (a sandbox container, a Docker endpoint). known=false means it cannot tell (Docker
// unreachable, say): the attachment is kept.
type Owners interface {
	Alive(ctx context.Context, a *state.Attachment) (alive, known bool)
}

// GCReport says what one collection found and did.
type GCReport struct {
	Interrupted int      // attachments of dead runs, released
	OwnerGone   int      // attachments whose container or endpoint is gone, released
	Ports       int      // Neutron ports of this VM that no attachment knows, deleted
	OVSPorts    int      // access ports that no attachment knows, deleted
	Veths       int      // veths that no attachment knows, deleted
	Marked      int      // orphans seen for the first time: deleted by a later pass
	Errors      []string // what could not be done (the next pass tries again)
}

func (r GCReport) String() string {
	return fmt.Sprintf("released %d interrupted and %d orphaned attachment(s); deleted %d Neutron port(s), %d OVS port(s), %d veth(s); %d orphan(s) marked for the next pass",
		r.Interrupted, r.OwnerGone, r.Ports, r.OVSPorts, r.Veths, r.Marked)
}

// GC runs one pass of the collector. It first finishes what interrupted runs left
// (Recover). Then it looks for orphans: attachments whose owner is gone, Neutron ports
// made for this VM, access ports on its bridge and veths in it that no attachment
// knows. An orphan is deleted only if an earlier pass, at least grace ago, saw it
// orphaned too: a run in progress (which records its intent before each step) is never
// mistaken for garbage, and a brief doubt costs one pass, not a container's network.
func (e *Engine) GC(ctx context.Context, owners Owners, grace time.Duration) (GCReport, error) {
	var r GCReport
	n, err := e.Recover(ctx)
	r.Interrupted = n
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	now := time.Now().UTC()
	seen := map[string]bool{} // orphan keys of this pass
	// due reports whether an orphan was marked long enough ago; it marks it otherwise.
	due := func(st *state.State, key string) bool {
		seen[key] = true
		at, ok := st.Marks[key]
		if !ok {
			st.Marks[key] = now
			r.Marked++
			return false
		}
		return now.Sub(at) >= grace
	}

	// What exists outside the state is read before the state: anything made after this
	// read by a run in progress is recorded in the state before it was made.
	ports, err := e.cfg.Neutron.VMPorts(ctx, e.cfg.VIFID)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		ports = nil
	}
	bridgePorts, err := e.cfg.Switch.Ports(ctx, e.cfg.Bridge)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	var links []string
	for _, prefix := range []string{netdev.HostPrefix, netdev.PeerPrefix} {
		names, err := e.cfg.Links.List(ctx, prefix)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
		links = append(links, names...)
	}

	// Attachments at rest whose owner is gone.
	var atRest []state.Attachment
	_ = e.cfg.Store.View(ctx, func(st *state.State) error {
		for _, a := range st.Attachments {
			if a.PID == 0 && a.OwnerKind != state.OwnerPool && a.Phase != state.PhaseDetaching {
				atRest = append(atRest, *a)
			}
		}
		return nil
	})
	gone := map[string]bool{}
	if owners != nil {
		for i := range atRest {
			if alive, known := owners.Alive(ctx, &atRest[i]); known && !alive {
				gone[atRest[i].ID] = true
			}
		}
	}

	var releaseAtts []string
	var delPorts []neutron.Port
	var delOVS, delLinks []string
	var trunkID string
	err = e.cfg.Store.Update(ctx, func(st *state.State) error {
		if st.Marks == nil {
			st.Marks = map[string]time.Time{}
		}
		portIDs, hostIfs, attIDs := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, a := range st.Attachments {
			attIDs[a.ID] = true
			if a.PortID != "" {
				portIDs[a.PortID] = true
			}
			if a.HostIf != "" {
				hostIfs[a.HostIf], hostIfs[a.PeerIf] = true, true
			}
			if a.TrunkID != "" {
				trunkID = a.TrunkID
			}
		}
		for id := range gone {
			if a := st.Attachments[id]; a != nil && a.PID == 0 && due(st, "att:"+id) {
				releaseAtts = append(releaseAtts, id)
			}
		}
		for _, p := range ports {
			att := strings.TrimPrefix(p.Name, neutron.NamePrefix)
			if portIDs[p.ID] || attIDs[att] {
				continue
			}
			if due(st, "port:"+p.ID) {
				delPorts = append(delPorts, p)
			}
		}
		for _, bp := range bridgePorts {
			att, ours := bp.ExternalIDs[ExtAttachment]
			if !ours || attIDs[att] || hostIfs[bp.Name] {
				continue
			}
			if due(st, "ovs:"+bp.Name) {
				delOVS = append(delOVS, bp.Name)
			}
		}
		for _, l := range links {
			if hostIfs[l] {
				continue
			}
			if due(st, "veth:"+l) {
				delLinks = append(delLinks, l)
			}
		}
		// Marks of things that are no longer orphans (or no longer exist) go.
		for key := range st.Marks {
			if !seen[key] {
				delete(st.Marks, key)
			}
		}
		return nil
	})
	if err != nil {
		return r, err
	}

	var errs []error
	for _, id := range releaseAtts {
		e.log.Info("gc: the owner is gone; releasing", "attachment", id)
		if err := e.Detach(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		r.OwnerGone++
	}
	for _, name := range delOVS {
		e.log.Info("gc: deleting an orphaned access port", "port", name)
		if err := e.cfg.Switch.DeletePort(ctx, e.cfg.Bridge, name); err != nil {
			errs = append(errs, err)
			continue
		}
		r.OVSPorts++
	}
	for _, name := range delLinks {
		e.log.Info("gc: deleting an orphaned veth", "veth", name)
		if err := e.cfg.Links.Delete(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		r.Veths++
	}
	if len(delPorts) > 0 && trunkID == "" && e.cfg.Mode == neutron.ModeTrunk {
		if t, _, err := e.trunk(ctx); err == nil && t != nil {
			trunkID = t.ID
		}
	}
	for _, p := range delPorts {
		e.log.Info("gc: deleting an orphaned Neutron port", "port", p.ID, "name", p.Name)
		if err := e.deletePort(ctx, p, trunkID); err != nil {
			errs = append(errs, err)
			continue
		}
		r.Ports++
	}
	for _, err := range errs {
		r.Errors = append(r.Errors, err.Error())
	}
	if len(r.Errors) > 0 {
		return r, errors.New(strings.Join(r.Errors, "; "))
	}
	return r, nil
}

// deletePort deletes an orphaned Neutron port, taking it off the trunk first if it is a
// subport.
func (e *Engine) deletePort(ctx context.Context, p neutron.Port, trunkID string) error {
	if trunkID != "" && p.DeviceOwner == "trunk:subport" {
		if err := e.cfg.Neutron.RemoveSubport(ctx, trunkID, p.ID); err != nil && !errors.Is(err, neutron.ErrNotFound) {
			return err
		}
	}
	if err := e.cfg.Neutron.DeletePort(ctx, p.ID); err != nil && !errors.Is(err, neutron.ErrNotFound) {
		return err
	}
	return nil
}

// DeleteOrphanPorts deletes, at once rather than after GC's grace, the Neutron ports
// this VM made on a network that no attachment records. It is for a network being
// deleted, which such a port keeps Neutron from deleting: the port of a process killed
// while Neutron was making it, which Neutron finished after the process died. No one can
// want it on a network that goes. It returns how many ports it deleted.
func (e *Engine) DeleteOrphanPorts(ctx context.Context, networkID string) (int, error) {
	// Ports before the state, as in GC: a port listed here whose attachment still
	// exists is in the state read after, since attachments are recorded before their
	// ports are made.
	ports, err := e.cfg.Neutron.VMPorts(ctx, e.cfg.VIFID)
	if err != nil {
		return 0, err
	}
	known := map[string]bool{}
	var trunkID string
	err = e.cfg.Store.View(ctx, func(st *state.State) error {
		for _, a := range st.Attachments {
			known[a.ID] = true
			if a.PortID != "" {
				known[a.PortID] = true
			}
			if a.TrunkID != "" {
				trunkID = a.TrunkID
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, p := range ports {
		if p.NetworkID != networkID || known[p.ID] || known[strings.TrimPrefix(p.Name, neutron.NamePrefix)] {
			continue
		}
		if trunkID == "" && p.DeviceOwner == "trunk:subport" && e.cfg.Mode == neutron.ModeTrunk {
			if t, _, err := e.trunk(ctx); err == nil && t != nil {
				trunkID = t.ID
			}
		}
		e.log.Info("deleting an orphaned Neutron port of a network being deleted", "port", p.ID, "name", p.Name, "network", networkID)
		if err := e.deletePort(ctx, p, trunkID); err != nil {
			errs = append(errs, fmt.Errorf("delete orphaned port %s: %w", p.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
