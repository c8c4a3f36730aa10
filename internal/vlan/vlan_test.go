package vlan

import (
	"errors"
	"testing"
)

func TestPickGoesRoundAfterLast(t *testing.T) {
	used := map[int]bool{}
	inUse := func(v int) bool { return used[v] }
	for _, tc := range []struct{ last, want int }{
		{0, 1}, {1, 2}, {41, 42}, {4093, 4094}, {4094, 1}, {-3, 1}, {5000, 1},
	} {
		got, err := Pick(inUse, tc.last)
		if err != nil || got != tc.want {
			t.Errorf("Pick(last=%d) = %d, %v; want %d", tc.last, got, err, tc.want)
		}
	}
}

func TestPickSkipsUsed(t *testing.T) {
	used := map[int]bool{1: true, 2: true, 4094: true, 7: true}
	got, err := Pick(func(v int) bool { return used[v] }, 4093)
	if err != nil || got != 3 {
		t.Fatalf("got %d, %v; want 3", got, err)
	}
	got, err = Pick(func(v int) bool { return used[v] }, 6)
	if err != nil || got != 8 {
		t.Fatalf("got %d, %v; want 8", got, err)
	}
}

func TestPickEveryVLANOnceThenExhausted(t *testing.T) {
	used := map[int]bool{}
	last := 0
	for i := 0; i < Max; i++ {
		v, err := Pick(func(v int) bool { return used[v] }, last)
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		if used[v] || !Valid(v) {
			t.Fatalf("pick %d returned %d twice or out of range", i, v)
		}
		used[v] = true
		last = v
	}
	if _, err := Pick(func(v int) bool { return used[v] }, last); !errors.Is(err, ErrExhausted) {
		t.Fatalf("after %d picks: %v, want ErrExhausted", Max, err)
	}
	delete(used, 1234)
	if v, err := Pick(func(v int) bool { return used[v] }, last); err != nil || v != 1234 {
		t.Fatalf("the one freed VLAN: got %d, %v", v, err)
	}
}

func TestCheck(t *testing.T) {
	for _, v := range []int{0, -1, 4095, 9999} {
		if Check(v) == nil {
			t.Errorf("Check(%d) accepted", v)
		}
	}
	for _, v := range []int{1, 100, 4094} {
		if err := Check(v); err != nil {
			t.Errorf("Check(%d): %v", v, err)
		}
	}
}
