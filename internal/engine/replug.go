package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// ErrBusy says another live process is working on the attachment.
var ErrBusy = errors.New("attachment is being worked on by another process")

// Replug puts an attached interface into its owner's new network namespace with the
// same Neutron port, and so the same MAC, addresses, VLAN and subport: what a sandbox
// that Docker started again (dockerd restarted, the VM rebooted) needs, since its old
// namespace, and the veth pair in it, died with its old process. The old pair and access
// port may still exist or be gone: they are deleted if present, then the pair is made
// with its container end in netns (the default route on it with defaultRoute), the
// access port is added with the attachment's VLAN, and the data path is proven as an
// attach proves it. The new netns is recorded last.
//
// Each step is journaled: the attachment is in phase replug while this process works
// on it. A process killed meanwhile leaves it to Recover, which puts it back at rest
// rather than releasing it (its Neutron port is the container's address); its recorded
// netns is still the old one, so the owner's next start, or the agent's next
// reconciliation, plumbs it again. A failure of the local plumbing undoes what this call
// made and records the error, with the attachment at rest and its netns the old one; a
// data path that does not come alive within ReadyTimeout leaves the new plumbing in
// place (OVN may still bind it) and records the error. Either way the Neutron part is
// kept: only the container's removal releases it.
func (e *Engine) Replug(ctx context.Context, attID, netns string, defaultRoute bool) (*state.Attachment, error) {
	if netns == "" {
		return nil, fmt.Errorf("replug attachment %s: no network namespace", attID)
	}
	if err := e.guard(ctx); err != nil {
		return nil, err
	}
	att := &state.Attachment{ID: attID}
	err := e.cfg.Store.Update(ctx, func(st *state.State) error {
		a := st.Attachments[attID]
		if a == nil {
			return fmt.Errorf("replug: no attachment %s", attID)
		}
		if a.PID != 0 && a.PID != os.Getpid() && alive(a.PID) {
			return fmt.Errorf("replug attachment %s (%s by process %d): %w", attID, a.Phase, a.PID, ErrBusy)
		}
		if a.Phase != state.PhaseAttached && a.Phase != state.PhaseReplug {
			return fmt.Errorf("replug attachment %s: it is %s, not attached", attID, a.Phase)
		}
		if a.PortID == "" || a.HostIf == "" || a.PeerIf == "" || a.IfName == "" {
			return fmt.Errorf("replug attachment %s: it has no port or interface names", attID)
		}
		a.Phase, a.PID, a.Updated = state.PhaseReplug, os.Getpid(), time.Now().UTC()
		*att = *a
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.fault("replug")

	// The old local plumbing, whatever of it is left: the access port first (it points at
	// the old device), then the pair, whose container end may live on in an old netns.
	if err := e.cfg.Switch.DeletePort(ctx, e.cfg.Bridge, att.HostIf); err != nil {
		return nil, e.replugFailed(ctx, att, fmt.Errorf("delete the old access port %s: %w", att.HostIf, err))
	}
	if err := e.cfg.Links.Delete(ctx, att.HostIf); err != nil {
		return nil, e.replugFailed(ctx, att, fmt.Errorf("delete the old veth %s: %w", att.HostIf, err))
	}
	e.fault("replug-unplumbed")

	t0 := time.Now()
	if err := e.cfg.Links.Create(ctx, specOf(att, netns, defaultRoute)); err != nil {
		return nil, e.replugFailed(ctx, att, fmt.Errorf("veth for %s in %s: %w", att.IfName, netns, err))
	}
	e.fault("replug-veth")
	if err := e.cfg.Switch.AddAccessPort(ctx, e.accessPort(att)); err != nil {
		err = fmt.Errorf("access port %s tag %d on %s: %w", att.HostIf, att.VLAN, e.cfg.Bridge, err)
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RollbackTimeout)
		defer cancel()
		if derr := e.cfg.Links.Delete(uctx, att.HostIf); derr != nil {
			err = fmt.Errorf("%w (and deleting veth %s failed: %v)", err, att.HostIf, derr)
		}
		return nil, e.replugFailed(ctx, att, err)
	}
	e.observe("plumb", t0)
	e.fault("replug-ovs")

	t0 = time.Now()
	readyErr := e.waitReady(ctx, att, netns, att.IfName)
	if readyErr == nil {
		e.observe("ready", t0)
	}
	// The new namespace is the attachment's from now on, live or not yet.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RollbackTimeout)
	defer cancel()
	if err := e.setPhase(rctx, att, state.PhaseAttached, func(a *state.Attachment) {
		a.NetNS, a.PID, a.Error, a.Note = netns, 0, "", ""
		if readyErr != nil {
			a.Error = readyErr.Error()
		}
	}); err != nil {
		return nil, errors.Join(readyErr, err)
	}
	if readyErr != nil {
		return nil, readyErr
	}
	e.fault("replugged")
	e.log.Info("plumbed again into its owner's new namespace", "attachment", att.ID, "owner", short(att.Owner),
		"network", att.NetworkName, "vlan", att.VLAN, "port", att.PortID, "mac", att.MAC, "ips", att.IPs,
		"ifname", att.IfName, "netns", netns)
	return att, nil
}

// replugFailed puts an attachment whose replug failed before its new plumbing was
// whole back at rest, attached to its old netns, with the error, and returns err.
func (e *Engine) replugFailed(ctx context.Context, att *state.Attachment, err error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.RollbackTimeout)
	defer cancel()
	if serr := e.setPhase(rctx, att, state.PhaseAttached, func(a *state.Attachment) {
		a.PID, a.Error = 0, err.Error()
	}); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// restInterruptedReplug puts an attachment whose replug was interrupted (its process
// died) back at rest, in place of Recover's release: its Neutron port is its
// container's address. Its netns is still the old one, so the next replug of its owner
// makes its plumbing again. It reports whether a is such an attachment.
func restInterruptedReplug(a *state.Attachment) bool {
	if a.Phase != state.PhaseReplug || (a.PID != 0 && (a.PID == os.Getpid() || alive(a.PID))) {
		return false
	}
	a.Phase, a.PID, a.Updated = state.PhaseAttached, 0, time.Now().UTC()
	a.Error = "re-plumbing into its owner's new namespace was interrupted; the next start or reconciliation does it again"
	return true
}

// SetNote records what the agent could not do for an attachment, for ps ("" clears it).
// An attachment that no longer exists is no error: there is nothing to say of it.
func (e *Engine) SetNote(ctx context.Context, attID, note string) error {
	return e.cfg.Store.Update(ctx, func(st *state.State) error {
		if a := st.Attachments[attID]; a != nil {
			a.Note = note
		}
		return nil
	})
}

// HostLinks names the VM ends of the veth pairs that exist in the VM: a pair whose
// container end was in a namespace that died is gone with it.
func (e *Engine) HostLinks(ctx context.Context) (map[string]bool, error) {
	names, err := e.cfg.Links.List(ctx, netdev.HostPrefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}
