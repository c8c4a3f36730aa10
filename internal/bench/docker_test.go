package bench

import (
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/metrics"
)

func calls(call string, n, secs float64) metrics.Samples {
	l := map[string]string{"service": "neutron", "call": call}
	return metrics.Samples{{Name: metricCallN, Labels: l, Value: n}, {Name: metricCallSum, Labels: l, Value: secs}}
}

// TestNeutronDeltaLeavesTheBackgroundOut: the requests the plugin makes in the
// background (a port's tags, its release) are counted apart from the run's own.
func TestNeutronDeltaLeavesTheBackgroundOut(t *testing.T) {
	var s0, s1 metrics.Samples
	s0 = append(s0, calls("POST ports", 10, 5)...)
	s0 = append(s0, calls("DELETE ports/{id}", 3, 1)...)
	s0 = append(s0, metrics.Sample{Name: metricCallN, Labels: map[string]string{"service": "keystone", "call": "POST auth/tokens"}, Value: 1})
	s1 = append(s1, calls("POST ports", 11, 5.6)...)
	s1 = append(s1, calls("PUT trunks/{id}/add_subports", 1, 0.4)...) // new since s0
	s1 = append(s1, calls("DELETE ports/{id}", 4, 1.3)...)
	s1 = append(s1, calls("PUT trunks/{id}/remove_subports", 1, 0.2)...)
	s1 = append(s1, calls("PUT ports/{id}/tags", 1, 0.1)...)
	s1 = append(s1, metrics.Sample{Name: metricCallN, Labels: map[string]string{"service": "keystone", "call": "POST auth/tokens"}, Value: 2})
	r := neutronDelta(s0, s1)
	near := func(d, want time.Duration) bool { return d > want-time.Microsecond && d < want+time.Microsecond }
	if r.all.Calls != 5 || !near(r.all.Time, 1600*time.Millisecond) {
		t.Errorf("all: %+v, want 5 calls in 1.6s (keystone's left out)", r.all)
	}
	if r.ownCalls != 2 || !near(r.own, time.Second) || r.background != 3 {
		t.Errorf("own %v in %v, background %v: want 2 in 1s, 3", r.ownCalls, r.own, r.background)
	}
}

func TestAtRest(t *testing.T) {
	for state, want := range map[string]bool{
		"ready (pool)": true, "stopped (port kept)": true,
		"releasing": false, "reserved": false, "attached": false, "ready": false, "port": false, "detaching": false,
	} {
		if got := atRest(state); got != want {
			t.Errorf("atRest(%q) = %v", state, got)
		}
	}
}
