package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Recover undoes the attachments an interrupted process left half made (or half
// released): those whose process is gone while they are still in an intermediate phase.
// It returns how many it released. An interrupted replug is not released but put back at
// rest (see Replug): its Neutron port is its container's address.
func (e *Engine) Recover(ctx context.Context) (int, error) {
	var stale []*state.Attachment
	var rested []string
	err := e.cfg.Store.Update(ctx, func(st *state.State) error {
		rested = nil
		for _, a := range st.Sorted() {
			if restInterruptedReplug(a) {
				rested = append(rested, a.ID)
				continue
			}
			if !interrupted(a) {
				continue
			}
			a.Phase, a.PID, a.Updated = state.PhaseDetaching, os.Getpid(), time.Now().UTC()
			c := *a
			stale = append(stale, &c)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range rested {
		e.log.Info("an interrupted re-plumb is left at rest, its port kept, for its owner's next start", "attachment", id)
	}
	var errs []error
	n := 0
	for _, a := range stale {
		e.log.Info("releasing an attachment an interrupted run left behind", "attachment", a.ID, "network", a.NetworkName, "vlan", a.VLAN)
		if err := e.release(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("attachment %s: %w", a.ID, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// interrupted reports an attachment that no live process is working on and that is not
// at rest (attached, or ready for a container).
func interrupted(a *state.Attachment) bool {
	if a.PID == os.Getpid() || (a.PID != 0 && alive(a.PID)) {
		return false
	}
	if a.PID != 0 {
		return true // its process died
	}
	switch a.Phase {
	case state.PhaseAttached, state.PhaseReady, state.PhasePrepared:
		return false // at rest
	}
	return true
}

func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
