package bench

import (
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"text/tabwriter"
	"time"
)

// The arithmetic and the table of the Docker bench (RunDocker): paths measured run by
// run in rounds, each compared with a base path by the median of the per-round ratios,
// which cancels what drifts over the rounds (load, caches) as long as it drifts slowly.

// Round is one round of runs: each path's time in it.
type Round map[string]time.Duration

// order is the order of the paths in round i: as given in even rounds, reversed in odd
// ones, so that each path runs as often before another as after it.
func order(i int, paths []string) []string {
	out := slices.Clone(paths)
	if i%2 == 1 {
		slices.Reverse(out)
	}
	return out
}

// series is one path's times over the rounds that have it.
func series(rounds []Round, path string) []time.Duration {
	var out []time.Duration
	for _, r := range rounds {
		if d, ok := r[path]; ok {
			out = append(out, d)
		}
	}
	return out
}

// pairedRatio is the median over the rounds that have both paths of path's time over
// base's; NaN when no round has both.
func pairedRatio(rounds []Round, path, base string) float64 {
	var rs []float64
	for _, r := range rounds {
		a, okA := r[path]
		b, okB := r[base]
		if okA && okB && b > 0 {
			rs = append(rs, float64(a)/float64(b))
		}
	}
	return medianF(rs)
}

// medianD is the median (the mean of the middle two for an even count); 0 when empty.
func medianD(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianF is the median of xs; NaN when empty.
func medianF(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// DockerRow is one path of the Docker bench's table.
type DockerRow struct {
	Path              string
	N, Errors         int // runs measured; runs that failed (left out)
	Median, P95       time.Duration
	VsMacvlan, VsNone float64 // median of the per-round ratios; NaN: not measured
	// NeutronCalls is the mean count of the agent's Neutron requests during a run, and
	// NeutronTime the median of their time (summed within a run); NaN/0: not measured.
	NeutronCalls float64
	NeutronTime  time.Duration
}

// NeutronSeen is what the agent asked of Neutron during one run.
type NeutronSeen struct {
	Calls float64
	Time  time.Duration
}

// SetNeutron fills a row's Neutron columns from its runs' samples.
func (r *DockerRow) SetNeutron(seen []NeutronSeen) {
	if len(seen) == 0 {
		r.NeutronCalls = math.NaN()
		return
	}
	var calls float64
	var ts []time.Duration
	for _, s := range seen {
		calls += s.Calls
		ts = append(ts, s.Time)
	}
	r.NeutronCalls, r.NeutronTime = calls/float64(len(seen)), medianD(ts)
}

// DockerRows makes the table's rows from the rounds: each path's median and p95, and
// its paired ratios against the macvlan and none paths.
func DockerRows(rounds []Round, paths []string, macvlan, none string) []DockerRow {
	var out []DockerRow
	for _, p := range paths {
		s := series(rounds, p)
		out = append(out, DockerRow{Path: p, N: len(s), Median: medianD(s), P95: pct(s, 95),
			VsMacvlan: pairedRatio(rounds, p, macvlan), VsNone: pairedRatio(rounds, p, none), NeutronCalls: math.NaN()})
	}
	return out
}

// ColdRound is one run of the cold plugin path with the macvlan run paired with it, and
// the time Neutron spent answering the run's own requests.
type ColdRound struct {
	Total, Neutron, Floor time.Duration
}

// Own is what the run took beyond Neutron and Docker's own floor for a network.
func (c ColdRound) Own() time.Duration { return c.Total - c.Neutron - c.Floor }

// ColdLine sums up the cold rounds.
type ColdLine struct {
	N, Errors                  int           // rounds measured; cold runs that failed (left out)
	Total, Neutron, Floor, Own time.Duration // medians; Own is the median of the per-round differences
	TotalP95, OwnP95           time.Duration
	Target                     time.Duration
	NeutronCalls, Background   float64 // per run: the run's own Neutron requests; the background's seen during it
}

// Cold sums up cold rounds; calls and background are the per-run means of the run's own
// Neutron requests and of the background's requests that fell inside a run.
func Cold(rounds []ColdRound, calls, background float64, target time.Duration) ColdLine {
	var tot, neu, flo, own []time.Duration
	for _, r := range rounds {
		tot, neu, flo, own = append(tot, r.Total), append(neu, r.Neutron), append(flo, r.Floor), append(own, r.Own())
	}
	return ColdLine{N: len(rounds), Total: medianD(tot), Neutron: medianD(neu), Floor: medianD(flo), Own: medianD(own),
		TotalP95: pct(tot, 95), OwnP95: pct(own, 95), Target: target, NeutronCalls: calls, Background: background}
}

// Target is a ratio the issue asks for, checked on the table.
type Target struct {
	Path  string
	Max   float64 // the paired ratio against macvlan may not exceed it
	Label string
}

// PrintDocker writes the table, the cold line and the targets.
func PrintDocker(w io.Writer, rows []DockerRow, cold *ColdLine, targets []Target) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tn\terrors\tmedian\tp95\tvs macvlan\tvs none\tneutron calls/run\tneutron time/run\t")
	byPath := map[string]DockerRow{}
	for _, r := range rows {
		byPath[r.Path] = r
		calls, t := "-", "-"
		if !math.IsNaN(r.NeutronCalls) {
			calls, t = fmt.Sprintf("%.1f", r.NeutronCalls), ms(r.NeutronTime)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Path, r.N, r.Errors, ms(r.Median), ms(r.P95), ratio(r.VsMacvlan), ratio(r.VsNone), calls, t)
	}
	tw.Flush()
	fmt.Fprintln(w, "(vs: the median over the rounds of the per-round ratio of the two paths' times;")
	fmt.Fprintln(w, " neutron: all the agent's requests during a run, its background work's included (a pool's refill,")
	fmt.Fprintln(w, " a release), their times summed: mean count, median time)")
	if cold != nil && cold.N > 0 {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "cold plugin path (no pool), %d runs each paired with a macvlan run:\n", cold.N)
		if cold.Errors > 0 {
			fmt.Fprintf(w, "  (%d cold runs failed, left out)\n", cold.Errors)
		}
		fmt.Fprintf(w, "  docker run median %s (p95 %s); Neutron answering its requests median %s (%.1f requests a run); macvlan median %s\n",
			ms(cold.Total), ms(cold.TotalP95), ms(cold.Neutron), cold.NeutronCalls, ms(cold.Floor))
		fmt.Fprintf(w, "  cold - Neutron - macvlan, per run: median %s, p95 %s; target <= %s: %s\n",
			ms(cold.Own), ms(cold.OwnP95), ms(cold.Target), verdict(cold.Own <= cold.Target))
		if cold.Background > 0 {
			fmt.Fprintf(w, "  (the plugin's background requests, the port's tags and its release, which the run does not wait for: %.1f a run, left out)\n", cold.Background)
		}
	}
	if len(targets) > 0 {
		fmt.Fprintln(w)
	}
	for _, t := range targets {
		r, ok := byPath[t.Path]
		if !ok || math.IsNaN(r.VsMacvlan) {
			continue
		}
		fmt.Fprintf(w, "target: %s / macvlan <= %.2f: %s %s\n", t.Label, t.Max, ratio(r.VsMacvlan), verdict(r.VsMacvlan <= t.Max))
	}
}

func ratio(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// freeSubnet is the first /24 of 198.18.0.0/15 (RFC 2544's, for benchmarks) that
// overlaps none of used.
func freeSubnet(used []netip.Prefix) (netip.Prefix, bool) {
	base := netip.MustParsePrefix("198.18.0.0/15")
	for i := 0; i < 512; i++ {
		c := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(i/256), byte(i % 256), 0}), 24)
		if !base.Contains(c.Addr()) {
			break
		}
		clash := false
		for _, u := range used {
			if u.Overlaps(c) {
				clash = true
				break
			}
		}
		if !clash {
			return c, true
		}
	}
	return netip.Prefix{}, false
}
