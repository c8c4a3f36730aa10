package engine

import (
	"context"

	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Records is the state as the engine's front ends see it: the attachments, which they
// read and the engine alone changes; the pools' policies, which the daemon publishes;
// and the Docker plugin's pools and networks. Each method is one look at, or one update
// of, the state file under its lock. An Engine has its Records; NewRecords gives them to
// a process that reads the state without an engine (ps, which needs no credentials).
type Records struct {
	store *state.Store
}

// NewRecords reads and writes the records of the state in store.
func NewRecords(store *state.Store) *Records { return &Records{store: store} }

// Attachments returns every attachment, oldest first.
func (r *Records) Attachments(ctx context.Context) ([]*state.Attachment, error) {
	var out []*state.Attachment
	err := r.store.View(ctx, func(st *state.State) error {
		out = st.Sorted()
		return nil
	})
	return out, err
}

// Attachment returns one attachment, or nil when the state has none of that ID.
func (r *Records) Attachment(ctx context.Context, id string) (*state.Attachment, error) {
	var out *state.Attachment
	err := r.store.View(ctx, func(st *state.State) error {
		out = st.Attachments[id]
		return nil
	})
	return out, err
}

// AttachmentsOf returns the attachments one owner holds (a sandbox, a Docker endpoint,
// an IPAM pool's "ipam:" owner, a pool), by interface name, then oldest first.
func (r *Records) AttachmentsOf(ctx context.Context, owner string) ([]*state.Attachment, error) {
	var out []*state.Attachment
	err := r.store.View(ctx, func(st *state.State) error {
		out = st.ByOwner(owner)
		return nil
	})
	return out, err
}

// AttachmentsOfKind returns the attachments whose owners are of one kind
// (state.OwnerSandbox, OwnerEndpoint, OwnerPool), oldest first.
func (r *Records) AttachmentsOfKind(ctx context.Context, kind string) ([]*state.Attachment, error) {
	return r.filter(ctx, func(a *state.Attachment) bool { return a.OwnerKind == kind })
}

// AttachmentsOn returns the attachments on a Neutron network, oldest first.
func (r *Records) AttachmentsOn(ctx context.Context, networkID string) ([]*state.Attachment, error) {
	return r.filter(ctx, func(a *state.Attachment) bool { return a.NetworkID == networkID })
}

func (r *Records) filter(ctx context.Context, keep func(*state.Attachment) bool) ([]*state.Attachment, error) {
	var out []*state.Attachment
	err := r.store.View(ctx, func(st *state.State) error {
		for _, a := range st.Sorted() {
			if keep(a) {
				out = append(out, a)
			}
		}
		return nil
	})
	return out, err
}

// UsedVLANs returns the VLANs the attachments hold, with the attachment holding each.
func (r *Records) UsedVLANs(ctx context.Context) (map[int]string, error) {
	var out map[int]string
	err := r.store.View(ctx, func(st *state.State) error {
		out = st.UsedVLANs()
		return nil
	})
	return out, err
}

// Ping reads the state under its lock: it answers unless someone holds the lock too
// long, or the file cannot be read.
func (r *Records) Ping(ctx context.Context) error {
	return r.store.View(ctx, func(*state.State) error { return nil })
}

// SetPoolPolicy publishes a pool's policy, so that every process of the VM follows it
// when it releases one of the pool's interfaces (see PoolHome).
func (r *Records) SetPoolPolicy(ctx context.Context, key string, p state.PoolPolicy) error {
	return r.store.Update(ctx, func(st *state.State) error {
		if st.Pools == nil {
			st.Pools = map[string]*state.PoolPolicy{}
		}
		st.Pools[key] = &p
		return nil
	})
}

// DropPoolPolicy forgets a pool's policy: nobody keeps that pool any more.
func (r *Records) DropPoolPolicy(ctx context.Context, key string) error {
	return r.store.Update(ctx, func(st *state.State) error {
		delete(st.Pools, key)
		return nil
	})
}

// PoolPolicies returns the pools' policies as the daemon last published them, by key.
func (r *Records) PoolPolicies(ctx context.Context) (map[string]*state.PoolPolicy, error) {
	var out map[string]*state.PoolPolicy
	err := r.store.View(ctx, func(st *state.State) error {
		out = st.Pools
		return nil
	})
	return out, err
}

// PoolHome is the pool an attached interface came from, as one look at the state finds
// it: what decides whether the interface goes back there when its container leaves.
type PoolHome struct {
	Pool   string            // the pool's key; "" when the attachment is no pool's interface in a container
	Policy *state.PoolPolicy // as the daemon published it; nil when none did
	Held   int               // the pool's interfaces, ready or on their way
	// InVM: the interface's pair is whole in the VM (a Docker endpoint's, which Docker
	// gave back), not in a container's namespace.
	InVM bool
}

// PoolHome finds the pool of an attachment that is in a container.
func (r *Records) PoolHome(ctx context.Context, attID string) (PoolHome, error) {
	var h PoolHome
	err := r.store.View(ctx, func(st *state.State) error {
		a := st.Attachments[attID]
		inNS := a != nil && a.Phase == state.PhaseAttached && a.NetNS != ""
		inVM := a != nil && a.Phase == state.PhaseReady && a.NetNS == "" && a.HostIf != ""
		if a == nil || a.Pool == "" || !inNS && !inVM {
			return nil
		}
		h.Pool, h.Policy, h.InVM = a.Pool, st.Pools[a.Pool], inVM
		for _, o := range st.Attachments {
			if o.Pool == h.Pool && o.OwnerKind == state.OwnerPool {
				h.Held++
			}
		}
		return nil
	})
	return h, err
}

// DockerRecords are the Docker plugin's pools (by IPAM pool ID) and networks (by Docker
// network ID). They live in the state so that one lock covers them and the attachments
// they refer to.
type DockerRecords struct {
	Pools    map[string]*state.DockerPool
	Networks map[string]*state.DockerNetwork
}

// DockerRecords returns the Docker plugin's records as they are: a copy, which the caller
// may keep and change.
func (r *Records) DockerRecords(ctx context.Context) (DockerRecords, error) {
	var out DockerRecords
	err := r.store.View(ctx, func(st *state.State) error {
		out = dockerRecordsOf(st)
		return nil
	})
	return out, err
}

// EditDockerRecords changes the Docker plugin's records in one state update: edit finds
// them as they are, and what it leaves is written, unless it returns an error, which
// EditDockerRecords returns with nothing written.
func (r *Records) EditDockerRecords(ctx context.Context, edit func(*DockerRecords) error) error {
	return r.store.Update(ctx, func(st *state.State) error {
		d := dockerRecordsOf(st)
		if err := edit(&d); err != nil {
			return err
		}
		st.DockerPools, st.DockerNetworks = d.Pools, d.Networks
		return nil
	})
}

// dockerRecordsOf takes the Docker records out of a state read for this call alone: no
// one else holds them.
func dockerRecordsOf(st *state.State) DockerRecords {
	d := DockerRecords{Pools: st.DockerPools, Networks: st.DockerNetworks}
	if d.Pools == nil {
		d.Pools = map[string]*state.DockerPool{}
	}
	if d.Networks == nil {
		d.Networks = map[string]*state.DockerNetwork{}
	}
	return d
}
