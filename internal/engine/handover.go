package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Handovers move an attachment at rest from one holder to the next without touching
// what it is made of: a pool's ready interface to Docker's IPAM, the IPAM to an
// endpoint, a stopped container's endpoint to the container itself (parked), back to a
// pool. Each is one state update, which is what keeps Docker's own commands fast: the
// work that costs (Neutron, netlink, OVSDB) is done before, by the pools, or after, by
// a release in the background.

// ErrNotHeld says the attachment is not where the handover expected it: another call
// took it first, or it is being worked on.
var ErrNotHeld = errors.New("attachment not held as expected")

// Holder is who holds an attachment: an owner and its kind.
type Holder struct {
	Owner, Kind string
}

// Hand gives an attachment at rest held by from to to, and applies change (which may
// set fields such as IPAMPool or Secondary) in the same update. It fails with
// ErrNotHeld when from does not hold it at rest.
func (r *Records) Hand(ctx context.Context, attID string, from, to Holder, change func(*state.Attachment)) (*state.Attachment, error) {
	var out *state.Attachment
	err := r.store.Update(ctx, func(st *state.State) error {
		a := st.Attachments[attID]
		if a == nil || a.PID != 0 || a.Owner != from.Owner || a.OwnerKind != from.Kind {
			return fmt.Errorf("attachment %s: %w (wanted from %s %s)", attID, ErrNotHeld, from.Kind, from.Owner)
		}
		a.Owner, a.OwnerKind, a.Updated = to.Owner, to.Kind, time.Now().UTC()
		if change != nil {
			change(a)
		}
		c := *a
		out = &c
		return nil
	})
	return out, err
}

// ClaimReady takes a ready interface of a pool (its pair and access port made, its
// data path proven) for to, at rest: the caller hands it on without plumbing. It returns
// nil when the pool has none.
func (r *Records) ClaimReady(ctx context.Context, pool string, to Holder, change func(*state.Attachment)) (*state.Attachment, error) {
	var got *state.Attachment
	err := r.store.Update(ctx, func(st *state.State) error {
		for _, a := range st.Sorted() {
			if a.Pool == pool && a.OwnerKind == state.OwnerPool && a.Phase == state.PhaseReady && a.PID == 0 && a.HostIf != "" {
				a.Owner, a.OwnerKind, a.Updated = to.Owner, to.Kind, time.Now().UTC()
				if change != nil {
					change(a)
				}
				c := *a
				got = &c
				return nil
			}
		}
		return nil
	})
	return got, err
}

// Shelve puts an attachment whose pair is in the VM (a Docker endpoint's, after Docker
// took the container end back) into its pool again, ready. The caller has checked that
// the pool reuses interfaces and has room.
func (r *Records) Shelve(ctx context.Context, attID, pool string) error {
	return r.store.Update(ctx, func(st *state.State) error {
		a := st.Attachments[attID]
		if a == nil {
			return fmt.Errorf("attachment %s vanished from the state", attID)
		}
		a.Owner, a.OwnerKind, a.Pool, a.PID, a.NetNS, a.IfName = pool, state.OwnerPool, pool, 0, "", ""
		a.Container, a.ContainerName, a.Error, a.IPAMPool, a.Secondary, a.Restarts = "", "", "", "", false, false
		a.Phase, a.Updated = state.PhaseReady, time.Now().UTC()
		return nil
	})
}

// TakeParked hands every port parked for a container to the release (OwnerReleasing), in
// one update, and returns them for the caller to release: of two callers (the agent
// seeing the container go, ovn-docker rm), each port goes to one only.
func (r *Records) TakeParked(ctx context.Context, container string) ([]*state.Attachment, error) {
	var out []*state.Attachment
	err := r.store.Update(ctx, func(st *state.State) error {
		for _, a := range st.Sorted() {
			if a.Owner == container && a.OwnerKind == state.OwnerParked && a.PID == 0 {
				a.Owner, a.OwnerKind, a.Updated = a.ID, state.OwnerReleasing, time.Now().UTC()
				c := *a
				out = append(out, &c)
			}
		}
		return nil
	})
	return out, err
}

// SetRestarts records whether an attachment's container restarts by itself.
func (r *Records) SetRestarts(ctx context.Context, attID string, restarts bool) error {
	return r.store.Update(ctx, func(st *state.State) error {
		if a := st.Attachments[attID]; a != nil {
			a.Restarts = restarts
		}
		return nil
	})
}
