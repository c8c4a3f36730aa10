package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/state"
	"github.com/ovn-docker/ovn-docker/internal/vlan"
)

// vlanSources says which VLANs each source holds, for a vlanSet under test.
type vlanSources struct {
	state, bridge, trunk, taken []int
}

func (s vlanSources) set(last int) (*vlanSet, *state.State) {
	st := &state.State{LastVLAN: last, Attachments: map[string]*state.Attachment{}}
	for _, v := range s.state {
		id := fmt.Sprintf("held%d", v)
		st.Attachments[id] = &state.Attachment{ID: id, VLAN: v}
	}
	var trunk *neutron.Trunk
	if s.trunk != nil {
		trunk = &neutron.Trunk{ID: "t", Subports: map[string]int{}}
		for _, v := range s.trunk {
			trunk.Subports[fmt.Sprintf("sub%d", v)] = v
		}
	}
	return newVLANSet(st, setOf(s.bridge), trunk, setOf(s.taken)), st
}

func setOf(vs []int) map[int]bool {
	if vs == nil {
		return nil
	}
	m := map[int]bool{}
	for _, v := range vs {
		m[v] = true
	}
	return m
}

// span lists the VLANs from..to.
func span(from, to int) []int {
	var out []int
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

// Each source alone keeps its VLANs from being chosen: a choice that ignored one of them
// would take VLAN 5.
func TestVLANSetEachSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  vlanSources
	}{
		{"state", vlanSources{state: []int{5}}},
		{"bridge", vlanSources{bridge: []int{5}}},
		{"trunk", vlanSources{trunk: []int{5}}},
		{"taken", vlanSources{taken: []int{5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, st := tc.src.set(4)
			if !s.inUse(5) || s.inUse(6) {
				t.Fatalf("inUse(5) %v, inUse(6) %v; want true, false", s.inUse(5), s.inUse(6))
			}
			v, err := s.pick("new")
			if err != nil || v != 6 {
				t.Fatalf("pick after 4 = %d, %v; want 6", v, err)
			}
			if st.LastVLAN != 6 {
				t.Errorf("last VLAN %d, want 6", st.LastVLAN)
			}
		})
	}
}

// The sources add up, and a batch's choices avoid one another.
func TestVLANSetBatch(t *testing.T) {
	s, st := vlanSources{state: []int{1, 5}, bridge: []int{2}, trunk: []int{3}, taken: []int{6}}.set(0)
	var got []int
	for i := range 3 {
		v, err := s.pick(fmt.Sprint("a", i))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if want := []int{4, 7, 8}; !slices.Equal(got, want) {
		t.Fatalf("picks %v, want %v", got, want)
	}
	if st.LastVLAN != 8 {
		t.Errorf("last VLAN %d, want 8", st.LastVLAN)
	}
	// The state itself is not changed: the caller records its attachments.
	if len(st.Attachments) != 2 {
		t.Errorf("%d attachments in the state, want the 2 it had", len(st.Attachments))
	}
}

// After 4094 the choice goes round to 1, skipping what each source holds there.
func TestVLANSetWrapsRound(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  vlanSources
		last int
		want int
	}{
		{"after 4094", vlanSources{}, 4094, 1},
		{"4094 on the bridge", vlanSources{bridge: []int{4094}}, 4093, 1},
		{"round past the state", vlanSources{state: []int{4094, 1}}, 4093, 2},
		{"round past the trunk", vlanSources{trunk: []int{1}}, 4094, 2},
		{"round past the taken", vlanSources{taken: []int{4094, 1, 2}}, 4093, 3},
		{"no last choice yet", vlanSources{}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := tc.src.set(tc.last)
			if v, err := s.pick("new"); err != nil || v != tc.want {
				t.Fatalf("pick after %d = %d, %v; want %d", tc.last, v, err, tc.want)
			}
		})
	}
}

// With every VLAN in use somewhere there is no choice, and nothing changes; a VLAN free
// in every source but one is still not chosen.
func TestVLANSetNoneFree(t *testing.T) {
	all := vlanSources{state: span(1, 1000), bridge: span(1001, 2000), trunk: span(2001, 3000), taken: span(3001, 4094)}
	s, st := all.set(17)
	if v, err := s.pick("new"); !errors.Is(err, vlan.ErrExhausted) {
		t.Fatalf("pick with every VLAN in use = %d, %v; want %v", v, err, vlan.ErrExhausted)
	}
	if st.LastVLAN != 17 || len(s.held) != 1000 {
		t.Errorf("a failed pick changed the last VLAN (%d) or the held ones (%d)", st.LastVLAN, len(s.held))
	}
	// Each source's share, left out, would be free: each is needed for the answer above.
	for _, drop := range []string{"state", "bridge", "trunk", "taken"} {
		src := all
		switch drop {
		case "state":
			src.state = nil
		case "bridge":
			src.bridge = nil
		case "trunk":
			src.trunk = nil
		case "taken":
			src.taken = nil
		}
		s, _ := src.set(17)
		if _, err := s.pick("new"); err != nil {
			t.Errorf("without the %s's VLANs: %v; want a free one", drop, err)
		}
	}
}

// When Neutron refuses a VLAN, the next choice reads the bridge again: a port tagged
// meanwhile is avoided, like the trunk's new subport.
func TestVLANRepickReadsTheBridgeAgain(t *testing.T) {
	h := newHarness(t)
	h.w.failAt("neutron.AddSubport", 1, fmt.Errorf("vlan 1: %w", neutron.ErrVLANInUse))
	h.w.onCall("neutron.AddSubport", 1, func() {
		h.w.mu.Lock()
		h.w.addedBehind = map[string]int{"foreign-port": 1}
		h.w.ovsPorts["foreign-p2"] = ovs.AccessPort{Bridge: testBridge, Name: "foreign-p2", Tag: 2}
		h.w.mu.Unlock()
	})
	att := h.attach(t, h.request("o", "eth0"))
	if att.VLAN != 3 {
		t.Errorf("VLAN %d, want 3 (1 refused by the trunk, 2 tagged on the bridge meanwhile)", att.VLAN)
	}
	var tried []int
	for _, c := range callsNamed(h.w.log(), "neutron.AddSubport") {
		tried = append(tried, c.Args[2].(int))
	}
	if !slices.Equal(tried, []int{1, 3}) {
		t.Errorf("AddSubport VLANs %v, want [1 3]", tried)
	}
	if err := h.e.Detach(context.Background(), att.ID); err != nil {
		t.Fatal(err)
	}
}
