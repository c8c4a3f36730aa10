// Package bench measures attach latency inside a VM on the real stack, and prints it:
// the local floor (a veth pair, an OVS access port, the namespace move and the address
// configuration, with no Neutron), the cold path (everything, Neutron included) and the
// warm path (from a pool), at several concurrencies; the Neutron calls of each path; the
// cold path's own time over what Neutron spends answering; and the throughput of many
// attaches at once. Containers are stood in for by network namespaces: an attach is the
// same work whoever made the namespace.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Counter counts and times the Neutron requests of a process (see metrics.Transport).
type Counter struct {
	Requests atomic.Int64
	Nanos    atomic.Int64
}

// Options shape a run.
type Options struct {
	Network     *neutron.Network // the network to attach to
	Samples     []int            // attaches per concurrency level, matching Concurrency
	Concurrency []int
	Total       int // attaches of the throughput run
	TotalConc   int // and its concurrency
	Batch       int // pool batch size
}

// Deps are what the bench measures with.
type Deps struct {
	Engine  *engine.Engine
	Switch  *ovs.Client
	Counter *Counter
	Log     *slog.Logger
}

// Result is one row of the table.
type Result struct {
	Path        string
	Concurrency int
	N, Errors   int
	P50, P95    time.Duration
	P99         time.Duration
	Wall        time.Duration
	Calls       float64 // Neutron requests per attach
	NeutronP50  time.Duration
	OverheadP50 time.Duration // cold path at concurrency 1: total minus Neutron's own time
}

// Run measures and prints the table to out.
func Run(ctx context.Context, d Deps, o Options, out io.Writer) ([]Result, error) {
	if o.Network == nil {
		return nil, errors.New("bench: no network")
	}
	if len(o.Samples) != len(o.Concurrency) {
		return nil, errors.New("bench: one sample count per concurrency level")
	}
	b := &runner{d: d, o: o, tag: 0}
	if err := b.pickTag(ctx); err != nil {
		return nil, err
	}
	var results []Result
	for i, c := range o.Concurrency {
		n := o.Samples[i]
		fmt.Fprintf(out, "floor c=%d n=%d...\n", c, n)
		r, err := b.measure(ctx, "floor", c, n, b.floor)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	for i, c := range o.Concurrency {
		n := o.Samples[i]
		fmt.Fprintf(out, "cold c=%d n=%d...\n", c, n)
		r, err := b.measure(ctx, "cold", c, n, b.cold)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	pools := pool.New(d.Engine, pool.Config{Batch: o.Batch, Log: d.Log, Refill: time.Hour})
	for i, c := range o.Concurrency {
		n := o.Samples[i]
		key, err := pools.Add(pool.Spec{Network: o.Network, Min: n, Max: n})
		if err != nil {
			return results, err
		}
		fmt.Fprintf(out, "warm c=%d n=%d: filling the pool...\n", c, n)
		if err := pools.Fill(ctx, key); err != nil {
			_ = pools.Drain(context.WithoutCancel(ctx))
			return results, fmt.Errorf("fill the pool: %w", err)
		}
		r, err := b.measure(ctx, "warm", c, n, b.warm(pools))
		if err != nil {
			_ = pools.Drain(context.WithoutCancel(ctx))
			return results, err
		}
		results = append(results, r)
	}
	if o.Total > 0 {
		fmt.Fprintf(out, "throughput: %d cold attaches at c=%d...\n", o.Total, o.TotalConc)
		r, err := b.measure(ctx, "cold-bulk", o.TotalConc, o.Total, b.cold)
		if err != nil {
			return results, err
		}
		results = append(results, r)
		key, err := pools.Add(pool.Spec{Network: o.Network, Min: o.Total, Max: o.Total})
		if err != nil {
			return results, err
		}
		fmt.Fprintf(out, "throughput: filling a pool of %d...\n", o.Total)
		if err := pools.Fill(ctx, key); err != nil {
			_ = pools.Drain(context.WithoutCancel(ctx))
			return results, fmt.Errorf("fill the pool: %w", err)
		}
		fmt.Fprintf(out, "throughput: %d warm attaches at c=%d...\n", o.Total, o.TotalConc)
		r, err = b.measure(ctx, "warm-bulk", o.TotalConc, o.Total, b.warm(pools))
		_ = pools.Drain(context.WithoutCancel(ctx))
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	Print(out, results)
	return results, nil
}

type runner struct {
	d   Deps
	o   Options
	tag int // an OVS tag no one uses, for the floor's access ports
	seq atomic.Int64
}

// sample is one attach: its time and the Neutron time inside it (exact at c=1 only).
type sample struct {
	total, neutron time.Duration
	err            error
}

// attachFn runs one attach into the namespace at nsPath and returns a release func.
type attachFn func(ctx context.Context, name, nsPath string) (func(context.Context) error, error)

func (b *runner) measure(ctx context.Context, path string, conc, n int, fn attachFn) (Result, error) {
	samples := make([]sample, n)
	releases := make([]func(context.Context) error, n)
	nss := make([]string, n)
	for i := range nss {
		nss[i] = fmt.Sprintf("odb%d-%d", time.Now().UnixNano()%1e6, b.seq.Add(1))
		if _, err := netdev.NewNamedNS(nss[i]); err != nil {
			for _, name := range nss[:i] {
				_ = netdev.DeleteNamedNS(name)
			}
			return Result{}, err
		}
	}
	defer func() {
		for _, name := range nss {
			_ = netdev.DeleteNamedNS(name)
		}
	}()
	calls0 := b.d.Counter.Requests.Load()
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				nb := b.d.Counter.Nanos.Load()
				t0 := time.Now()
				rel, err := fn(ctx, nss[i], "/run/netns/"+nss[i])
				samples[i] = sample{total: time.Since(t0), neutron: time.Duration(b.d.Counter.Nanos.Load() - nb), err: err}
				releases[i] = rel
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	wall := time.Since(start)
	calls := b.d.Counter.Requests.Load() - calls0
	// Release everything (not timed), then report.
	var relErrs []error
	for _, rel := range releases {
		if rel != nil {
			relErrs = append(relErrs, rel(context.WithoutCancel(ctx)))
		}
	}
	r := Result{Path: path, Concurrency: conc, N: n, Wall: wall, Calls: float64(calls) / float64(n)}
	var ok, neut, over []time.Duration
	for _, s := range samples {
		if s.err != nil {
			r.Errors++
			b.d.Log.Warn("bench: attach failed", "path", path, "err", s.err)
			continue
		}
		ok = append(ok, s.total)
		neut = append(neut, s.neutron)
		over = append(over, s.total-s.neutron)
	}
	r.P50, r.P95, r.P99 = pct(ok, 50), pct(ok, 95), pct(ok, 99)
	if conc == 1 {
		r.NeutronP50, r.OverheadP50 = pct(neut, 50), pct(over, 50)
	}
	return r, errors.Join(relErrs...)
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}

// pickTag finds an OVS tag no one uses (bridge, state, trunk are all asked by the engine
// when it allocates; the floor only needs one tag that is nobody's).
func (b *runner) pickTag(ctx context.Context) error {
	tags, err := b.d.Switch.UsedTags(ctx, b.d.Engine.Config().Bridge)
	if err != nil {
		return err
	}
	used, _ := b.d.Engine.UsedVLANs(ctx)
	for v := 4094; v > 1; v-- {
		if _, held := used[v]; !tags[v] && !held {
			b.tag = v
			return nil
		}
	}
	return errors.New("bench: no free VLAN for the floor")
}

// floor: a veth pair in the VM, an access port, the move into the namespace and the
// address configuration: what any attach must do locally, without Neutron.
func (b *runner) floor(ctx context.Context, name, nsPath string) (func(context.Context) error, error) {
	i := b.seq.Add(1)
	host, peer := fmt.Sprintf("odfh%d", i), fmt.Sprintf("odfc%d", i)
	mac := net.HardwareAddr{0x02, 0xfb, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
	ip := netip.AddrFrom4([4]byte{10, 254, byte(i >> 8), byte(i)})
	bridge := b.d.Engine.Config().Bridge
	release := func(ctx context.Context) error {
		return errors.Join(b.d.Switch.DeletePort(ctx, bridge, host), netdev.Delete(ctx, host))
	}
	if err := netdev.CreatePair(ctx, host, peer, 1442); err != nil {
		return nil, err
	}
	if err := b.d.Switch.AddAccessPort(ctx, ovs.AccessPort{Bridge: bridge, Name: host, Tag: b.tag,
		ExternalIDs: map[string]string{"ovn-docker-bench": "floor"}}); err != nil {
		return release, err
	}
	err := netdev.MoveIn(ctx, netdev.Spec{HostName: host, PeerName: peer, NetNS: nsPath, IfName: "eth0", MAC: mac,
		Addrs: []net.IPNet{{IP: ip.AsSlice(), Mask: net.CIDRMask(16, 32)}}, Gateways: []net.IP{net.IPv4(10, 254, 0, 1)}, MTU: 1442})
	return release, err
}

func (b *runner) cold(ctx context.Context, name, nsPath string) (func(context.Context) error, error) {
	att, err := b.d.Engine.Attach(ctx, engine.Request{Owner: name, OwnerKind: state.OwnerSandbox, Network: b.o.Network,
		IfName: "eth0", NetNS: nsPath, DefaultRoute: true})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return b.d.Engine.Detach(ctx, att.ID) }, nil
}

func (b *runner) warm(pools *pool.Pools) attachFn {
	return func(ctx context.Context, name, nsPath string) (func(context.Context) error, error) {
		att, hit, err := pools.Attach(ctx, engine.Request{Owner: name, OwnerKind: state.OwnerSandbox, Network: b.o.Network,
			IfName: "eth0", NetNS: nsPath, DefaultRoute: true})
		if err != nil {
			return nil, err
		}
		rel := func(ctx context.Context) error { return b.d.Engine.Detach(ctx, att.ID) }
		if !hit {
			return rel, errors.New("the pool was empty: the attach went the cold way")
		}
		return rel, nil
	}
}

// Print writes the table and the ratios the targets are about.
func Print(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tconc\tn\terrors\tp50\tp95\tp99\tattaches/s\tneutron calls/attach\t")
	p50 := map[string]time.Duration{}
	for _, r := range rs {
		rate := float64(r.N-r.Errors) / r.Wall.Seconds()
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%.1f\t%.2f\t\n", r.Path, r.Concurrency, r.N, r.Errors,
			ms(r.P50), ms(r.P95), ms(r.P99), rate, r.Calls)
		p50[fmt.Sprintf("%s/%d", r.Path, r.Concurrency)] = r.P50
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, r := range rs {
		if r.Path == "cold" && r.Concurrency == 1 {
			fmt.Fprintf(w, "cold path at c=1: p50 %s, of which Neutron answering p50 %s; ovn-docker's own time p50 %s\n",
				ms(r.P50), ms(r.NeutronP50), ms(r.OverheadP50))
		}
	}
	for _, c := range []int{1, 10, 50} {
		f, wm, cd := p50[fmt.Sprintf("floor/%d", c)], p50[fmt.Sprintf("warm/%d", c)], p50[fmt.Sprintf("cold/%d", c)]
		if f > 0 && wm > 0 && cd > 0 {
			fmt.Fprintf(w, "c=%d: warm/floor p50 = %.2f   cold/warm p50 = %.1f\n", c, float64(wm)/float64(f), float64(cd)/float64(wm))
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
