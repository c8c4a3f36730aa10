package engine

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/state"
	"github.com/ovn-docker/ovn-docker/internal/testutil/scratch"
)

func testRecords(t *testing.T, atts ...*state.Attachment) (*Records, *state.Store) {
	t.Helper()
	store, err := state.Open(scratch.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	err = store.Update(context.Background(), func(st *state.State) error {
		for _, a := range atts {
			st.Attachments[a.ID] = a
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return NewRecords(store), store
}

func ids(atts []*state.Attachment) []string {
	var out []string
	for _, a := range atts {
		out = append(out, a.ID)
	}
	return out
}

func TestRecordsAttachments(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(id, owner, kind, network, ifname string, vlan, age int) *state.Attachment {
		return &state.Attachment{ID: id, Owner: owner, OwnerKind: kind, NetworkID: network, IfName: ifname, VLAN: vlan,
			Phase: state.PhaseAttached, Created: t0.Add(time.Duration(age) * time.Minute)}
	}
	r, _ := testRecords(t,
		at("a", "sb1", state.OwnerSandbox, "n1", "eth1", 10, 0),
		at("b", "sb1", state.OwnerSandbox, "n2", "eth0", 11, 1),
		at("c", "ep1", state.OwnerEndpoint, "n1", "", 12, 2),
		at("d", "pool:n1:", state.OwnerPool, "n1", "", 0, 3),
	)
	ctx := context.Background()
	check := func(what string, atts []*state.Attachment, err error, want ...string) {
		t.Helper()
		if got := ids(atts); err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v, %v; want %v", what, got, err, want)
		}
	}
	all, err := r.Attachments(ctx)
	check("all", all, err, "a", "b", "c", "d")
	of, err := r.AttachmentsOf(ctx, "sb1")
	check("of sb1, by interface", of, err, "b", "a")
	kind, err := r.AttachmentsOfKind(ctx, state.OwnerEndpoint)
	check("endpoints", kind, err, "c")
	on, err := r.AttachmentsOn(ctx, "n1")
	check("on n1", on, err, "a", "c", "d")
	none, err := r.AttachmentsOn(ctx, "n3")
	check("on n3", none, err)

	if a, err := r.Attachment(ctx, "c"); err != nil || a == nil || a.Owner != "ep1" {
		t.Errorf("attachment c: %+v, %v", a, err)
	}
	if a, err := r.Attachment(ctx, "zz"); err != nil || a != nil {
		t.Errorf("attachment zz: %+v, %v; want none", a, err)
	}
	if err := r.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
	used, err := r.UsedVLANs(ctx)
	if err != nil || len(used) != 3 || used[10] != "a" || used[12] != "c" {
		t.Errorf("used VLANs %v, %v", used, err)
	}
	// What a caller gets is its own: changing it changes nothing in the state.
	all[0].VLAN = 99
	if a, _ := r.Attachment(ctx, "a"); a.VLAN != 10 {
		t.Errorf("a caller's change reached the state: vlan %d", a.VLAN)
	}
}

func TestRecordsPoolHome(t *testing.T) {
	const key = "pool:n1:"
	pooled := func(id string, phase state.Phase) *state.Attachment {
		return &state.Attachment{ID: id, Owner: key, OwnerKind: state.OwnerPool, Pool: key, Phase: phase}
	}
	r, _ := testRecords(t, pooled("r1", state.PhaseReady), pooled("r2", state.PhasePlumb),
		&state.Attachment{ID: "in", Owner: "sb", OwnerKind: state.OwnerSandbox, Pool: key, Phase: state.PhaseAttached, NetNS: "/run/netns/x"},
		&state.Attachment{ID: "cold", Owner: "sb", OwnerKind: state.OwnerSandbox, Phase: state.PhaseAttached, NetNS: "/run/netns/x"})
	ctx := context.Background()
	h, err := r.PoolHome(ctx, "in")
	if err != nil || h.Pool != key || h.Policy != nil || h.Held != 2 {
		t.Fatalf("before the policy: %+v, %v; want the pool, no policy, 2 held", h, err)
	}
	if err := r.SetPoolPolicy(ctx, key, state.PoolPolicy{Network: "n1", Min: 1, Max: 3, Reuse: true}); err != nil {
		t.Fatal(err)
	}
	if pols, err := r.PoolPolicies(ctx); err != nil || len(pols) != 1 || pols[key] == nil || pols[key].Max != 3 {
		t.Fatalf("policies: %+v, %v", pols, err)
	}
	h, err = r.PoolHome(ctx, "in")
	if err != nil || h.Policy == nil || !h.Policy.Reuse || h.Policy.Max != 3 || h.Held != 2 {
		t.Fatalf("with the policy: %+v, %v", h, err)
	}
	for _, id := range []string{"cold", "r1", "gone"} {
		if h, err := r.PoolHome(ctx, id); err != nil || h != (PoolHome{}) {
			t.Errorf("%s: %+v, %v; want no pool", id, h, err)
		}
	}
}

func TestRecordsDocker(t *testing.T) {
	r, store := testRecords(t)
	ctx := context.Background()
	d, err := r.DockerRecords(ctx)
	if err != nil || d.Pools == nil || d.Networks == nil || len(d.Pools)+len(d.Networks) != 0 {
		t.Fatalf("empty records: %+v, %v; want empty maps", d, err)
	}
	err = r.EditDockerRecords(ctx, func(d *DockerRecords) error {
		d.Pools["p1"] = &state.DockerPool{ID: "p1", CIDR: "10.0.0.0/24"}
		d.Networks["n1"] = &state.DockerNetwork{ID: "n1", Pool: "p1"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A failed edit writes nothing, not even what it changed before failing.
	boom := errors.New("boom")
	err = r.EditDockerRecords(ctx, func(d *DockerRecords) error {
		delete(d.Pools, "p1")
		d.Networks["n1"].Name = "changed"
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failed edit: %v", err)
	}
	var st *state.State
	if err := store.View(ctx, func(s *state.State) error { st = s; return nil }); err != nil {
		t.Fatal(err)
	}
	if st.DockerPools["p1"] == nil || st.DockerNetworks["n1"] == nil || st.DockerNetworks["n1"].Name != "" {
		t.Fatalf("state after the edits: pools %+v, networks %+v", st.DockerPools, st.DockerNetworks)
	}
	d, err = r.DockerRecords(ctx)
	if err != nil || d.Pools["p1"].CIDR != "10.0.0.0/24" || d.Networks["n1"].Pool != "p1" {
		t.Fatalf("records: %+v, %v", d, err)
	}
}
