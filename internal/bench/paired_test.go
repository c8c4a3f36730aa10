package bench

import (
	"bytes"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

const ms1 = time.Millisecond

func TestOrderAlternates(t *testing.T) {
	paths := []string{"a", "b", "c"}
	if got := order(0, paths); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("round 0: %v", got)
	}
	if got := order(1, paths); !slices.Equal(got, []string{"c", "b", "a"}) {
		t.Errorf("round 1: %v", got)
	}
	if got := order(2, paths); !slices.Equal(got, paths) {
		t.Errorf("round 2: %v", got)
	}
	if !slices.Equal(paths, []string{"a", "b", "c"}) {
		t.Errorf("order changed its argument: %v", paths)
	}
}

func TestMedians(t *testing.T) {
	if got := medianD(nil); got != 0 {
		t.Errorf("empty: %v", got)
	}
	if got := medianD([]time.Duration{5, 1, 3}); got != 3 {
		t.Errorf("odd: %v", got)
	}
	if got := medianD([]time.Duration{4, 1, 3, 10}); got != 3 {
		t.Errorf("even: %v, want (3+4)/2=3 in integer nanoseconds", got)
	}
	if got := medianF([]float64{1, 2, 4, 3}); got != 2.5 {
		t.Errorf("even floats: %v", got)
	}
	if !math.IsNaN(medianF(nil)) {
		t.Error("empty floats: want NaN")
	}
}

// TestPairedRatioIsTheMedianOfPerRoundRatios: a drift that slows both paths of a round
// alike does not move the paired ratio, while the ratio of the medians would.
func TestPairedRatioIsTheMedianOfPerRoundRatios(t *testing.T) {
	var rounds []Round
	for i := 0; i < 5; i++ {
		base := time.Duration(100*(i+1)) * ms1 // drifts: 100, 200, ... 500 ms
		rounds = append(rounds, Round{"ovn": base * 11 / 10, "mv": base, "none": base / 2})
	}
	if got := pairedRatio(rounds, "ovn", "mv"); math.Abs(got-1.1) > 1e-9 {
		t.Errorf("ovn/mv = %v, want 1.1", got)
	}
	if got := pairedRatio(rounds, "ovn", "none"); math.Abs(got-2.2) > 1e-9 {
		t.Errorf("ovn/none = %v, want 2.2", got)
	}
	// A round without one of the two is left out; no common round gives NaN.
	rounds = append(rounds, Round{"ovn": 10 * time.Second})
	if got := pairedRatio(rounds, "ovn", "mv"); math.Abs(got-1.1) > 1e-9 {
		t.Errorf("with an unpaired round: %v, want 1.1", got)
	}
	if got := pairedRatio(rounds, "ovn", "nothing"); !math.IsNaN(got) {
		t.Errorf("no pair: %v, want NaN", got)
	}
}

func TestDockerRows(t *testing.T) {
	rounds := []Round{
		{"ovn": 110 * ms1, "mv": 100 * ms1, "none": 50 * ms1},
		{"ovn": 130 * ms1, "mv": 100 * ms1, "none": 50 * ms1},
		{"ovn": 120 * ms1, "mv": 120 * ms1, "none": 60 * ms1},
	}
	rows := DockerRows(rounds, []string{"ovn", "mv", "none"}, "mv", "none")
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	ovn := rows[0]
	if ovn.N != 3 || ovn.Median != 120*ms1 || ovn.P95 != 130*ms1 {
		t.Errorf("ovn row: %+v", ovn)
	}
	// Per-round ratios 1.1, 1.3, 1.0: median 1.1.
	if math.Abs(ovn.VsMacvlan-1.1) > 1e-9 || math.Abs(ovn.VsNone-2.2) > 1e-9 {
		t.Errorf("ovn ratios: %v %v", ovn.VsMacvlan, ovn.VsNone)
	}
	if rows[1].VsMacvlan != 1 || rows[2].VsNone != 1 {
		t.Errorf("a path against itself: %v %v", rows[1].VsMacvlan, rows[2].VsNone)
	}
}

func TestColdIsPerRound(t *testing.T) {
	rounds := []ColdRound{
		{Total: 1500 * ms1, Neutron: 1000 * ms1, Floor: 460 * ms1}, // 40
		{Total: 900 * ms1, Neutron: 400 * ms1, Floor: 470 * ms1},   // 30
		{Total: 2000 * ms1, Neutron: 1400 * ms1, Floor: 500 * ms1}, // 100
	}
	c := Cold(rounds, 3, 0.5, 50*ms1)
	if c.N != 3 || c.Own != 40*ms1 || c.OwnP95 != 100*ms1 || c.Total != 1500*ms1 || c.Neutron != 1000*ms1 || c.Floor != 470*ms1 {
		t.Errorf("%+v", c)
	}
	if c.NeutronCalls != 3 || c.Background != 0.5 {
		t.Errorf("calls %v, background %v", c.NeutronCalls, c.Background)
	}
}

func TestPrintDocker(t *testing.T) {
	rows := []DockerRow{
		{Path: "docker run --network ovn (warm)", N: 20, Median: 512300 * time.Microsecond, P95: 600 * ms1, VsMacvlan: 1.04, VsNone: 1.31},
		{Path: "docker run --network macvlan", N: 20, Errors: 1, Median: 490 * ms1, P95: 550 * ms1, VsMacvlan: 1, VsNone: 1.25},
		{Path: "ovn-docker run (agent)", N: 0, VsMacvlan: math.NaN(), VsNone: math.NaN(), NeutronCalls: math.NaN()},
	}
	rows[0].SetNeutron([]NeutronSeen{{Calls: 0, Time: 0}, {Calls: 1, Time: 120 * ms1}, {Calls: 0, Time: 0}})
	rows[1].SetNeutron(nil)
	cold := &ColdLine{N: 20, Errors: 2, Total: 1500 * ms1, TotalP95: 1800 * ms1, Neutron: 1000 * ms1, Floor: 470 * ms1, Own: 30 * ms1, OwnP95: 60 * ms1,
		Target: 50 * ms1, NeutronCalls: 3}
	var b bytes.Buffer
	PrintDocker(&b, rows, cold, []Target{
		{Path: rows[0].Path, Max: 1.10, Label: "warm docker run"},
		{Path: rows[2].Path, Max: 1.10, Label: "ovn-docker run"}, // not measured: no line
	})
	out := b.String()
	for _, want := range []string{
		"path  n  errors  median  p95  vs macvlan  vs none  neutron calls/run  neutron time/run",
		"docker run --network ovn (warm)  20  0  512.3ms  600.0ms        1.04     1.31  0.3  0.0ms",
		"docker run --network macvlan  20  1  490.0ms  550.0ms  1.00  1.25  -  -",
		"ovn-docker run (agent)   0  0    0.0ms    0.0ms           -        -  -  -",
		"cold - Neutron - macvlan, per run: median 30.0ms, p95 60.0ms; target <= 50.0ms: met",
		"Neutron answering its requests median 1000.0ms (3.0 requests a run)",
		"target: warm docker run / macvlan <= 1.10: 1.04 met",
		"(2 cold runs failed, left out)",
	} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "target: ovn-docker run") {
		t.Errorf("a target of a path not measured is printed:\n%s", out)
	}
	if strings.Contains(out, "background requests") {
		t.Errorf("no background request seen, yet a note about it:\n%s", out)
	}
	// Columns line up: every table line has its ratio columns at the same place.
	lines := strings.Split(out, "\n")
	if w := len(lines[0]); len(lines[1]) != w || len(lines[2]) != w {
		t.Errorf("table lines of different widths:\n%s", out)
	}
}

func TestFreeSubnet(t *testing.T) {
	used := []netip.Prefix{
		netip.MustParsePrefix("198.18.0.0/23"),  // the first two /24s
		netip.MustParsePrefix("198.18.2.77/32"), // an address in the third
		netip.MustParsePrefix("10.0.0.0/8"),
	}
	got, ok := freeSubnet(used)
	if !ok || got != netip.MustParsePrefix("198.18.3.0/24") {
		t.Errorf("freeSubnet = %v %v, want 198.18.3.0/24", got, ok)
	}
	// A default route is no address: the caller leaves it out; a /15 taken leaves none.
	if _, ok := freeSubnet([]netip.Prefix{netip.MustParsePrefix("198.16.0.0/14")}); ok {
		t.Error("found a subnet in a range all taken")
	}
}
