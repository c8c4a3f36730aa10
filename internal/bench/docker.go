package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/vishvananda/netlink"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/metrics"
)

// The Docker bench (ovn-docker bench --docker) measures what a user of the VM's agent
// measures: the whole `docker run --rm IMAGE true`, as the docker CLI does it through
// the API, on a Docker network of the plugin with a warm pool, against the same on a
// macvlan network (Docker's own floor for a network) and with --net=none; the same for
// `ovn-docker --network LS run --rm IMAGE true` through the agent (the binary itself,
// as a user runs it); and the plugin's cold path, against the time Neutron spends
// answering it, read from the agent's metrics.

// The paths of the Docker bench's table.
const (
	PathWarm      = "docker run --network ovn (warm pool)"
	PathMacvlan   = "docker run --network macvlan"
	PathNone      = "docker run --net=none"
	PathOVNDocker = "ovn-docker --network LS run (agent)"
	pathCold      = "cold"
)

// The targets of the issue.
const (
	TargetRatio = 1.10
	TargetCold  = 50 * time.Millisecond
)

// Metrics the bench reads from the agent.
const (
	metricInFlight = "ovn_docker_openstack_requests_in_flight"
	metricCallSum  = "ovn_docker_openstack_call_seconds_sum"
	metricCallN    = "ovn_docker_openstack_call_seconds_count"
)

// backgroundCalls are the Neutron calls the plugin makes in the background of a docker
// run, which Docker does not wait for: the port's tags naming the container (once
// Docker shows which container joined) and its release once Docker gave it up.
var backgroundCalls = []string{"PUT ports/{id}/tags", "DELETE ports/{id}", "PUT trunks/{id}/remove_subports"}

// DockerOptions shape a Docker bench.
type DockerOptions struct {
	Pairs   int    // rounds of each comparison
	PoolMin int    // the warm network's -o pool.min
	Image   string // the image run (busybox:local on the stack)
	Network string // a Neutron network (name or ID) to use; "" makes a scratch one
	Uplink  string // the parent of the macvlan network
	Plugin  string // the agent's plugin: docker network create -d and --ipam-driver
	// Exe is the ovn-docker binary, run as a user runs it, with GlobalArgs before its
	// --network flag.
	Exe        string
	GlobalArgs []string
	// DockerCLI, when set, is a docker CLI binary: the docker paths then run it, one
	// process per run as their user does, so that they pay for a process's start as
	// ovn-docker run does. Unset, they are the same API calls made in-process.
	DockerCLI string
	// Settle is how long the agent must have been idle (no Neutron request in flight,
	// the pool full, no port of the bench's networks being made or released) before a
	// run starts; Quiet bounds the wait.
	Settle, Quiet time.Duration
	SkipCold      bool
}

// DockerDeps are what the Docker bench works with.
type DockerDeps struct {
	Docker  *docker.Client
	Agent   *api.Client
	Metrics func(context.Context) (metrics.Samples, error)
	Log     *slog.Logger
}

// DockerReport is what the Docker bench measured.
type DockerReport struct {
	Rows []DockerRow
	Cold *ColdLine
}

type dockerBench struct {
	d        DockerDeps
	o        DockerOptions
	out      io.Writer
	netID    string // the Neutron network of the warm paths
	netName  string
	cidr     string
	coldNet  api.Network // the scratch Neutron network of the cold path
	coldCIDR string
	warm     string // Docker networks, by ID
	macvlan  string
	made     []string // every Docker network the bench made, to remove
	idleWait time.Duration
	errors   map[string]int // failed runs, by path
}

// failed notes a run that failed: the round goes on without it, unless too many did.
func (b *dockerBench) failed(path string, err error) error {
	b.errors[path]++
	n := 0
	for _, c := range b.errors {
		n += c
	}
	fmt.Fprintf(b.out, "a run failed (%s), left out: %v\n", path, err)
	if limit := max(3, b.o.Pairs/5); n > limit {
		return fmt.Errorf("%d runs failed, more than %d: the last: %w", n, limit, err)
	}
	return nil
}

// RunDocker runs the Docker bench and prints its table to out. Everything it makes is
// removed at the end, whatever happens.
func RunDocker(ctx context.Context, d DockerDeps, o DockerOptions, out io.Writer) (rep *DockerReport, err error) {
	if o.Pairs < 1 || o.PoolMin < 1 {
		return nil, errors.New("bench: --pairs and --pool-min must be at least 1")
	}
	if o.Settle <= 0 {
		o.Settle = 300 * time.Millisecond
	}
	if o.Quiet <= 0 {
		o.Quiet = 3 * time.Minute
	}
	b := &dockerBench{d: d, o: o, out: out, errors: map[string]int{}}
	ss, err := d.Metrics(ctx)
	if err != nil {
		return nil, fmt.Errorf("the agent's metrics: %w", err)
	}
	if !ss.Has(metricInFlight) {
		return nil, fmt.Errorf("the agent's metrics lack %s: the agent is older than this bench; restart ovn-docker daemon with this build", metricInFlight)
	}
	if err := d.Docker.EnsureImage(ctx, o.Image, docker.PullMissing); err != nil {
		return nil, err
	}
	before, err := d.Docker.Networks(ctx, o.Plugin)
	if err != nil {
		return nil, err
	}
	var scratch []api.Network // Neutron networks to delete at the end
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if cerr := b.cleanup(cctx, before, scratch); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()
	stamp := strconv.FormatInt(time.Now().Unix(), 36)
	if o.Network != "" {
		n, err := b.findNetwork(ctx, o.Network)
		if err != nil {
			return nil, err
		}
		if b.cidr, err = firstV4(n); err != nil {
			return nil, err
		}
		b.netID, b.netName = n.ID, n.Name
	} else {
		n, err := b.scratchNetwork(ctx, "ovn-docker-bench-"+stamp)
		if err != nil {
			return nil, err
		}
		scratch = append(scratch, n)
		b.netID, b.netName, b.cidr = n.ID, n.Name, mustV4(n)
	}
	if !o.SkipCold {
		// A network of its own: no pool of the warm network's may serve it.
		n, err := b.scratchNetwork(ctx, "ovn-docker-bench-"+stamp+"-cold")
		if err != nil {
			return nil, err
		}
		scratch = append(scratch, n)
		b.coldNet, b.coldCIDR = n, mustV4(n)
	}
	if err := b.macvlanNetwork(ctx, "odb-macvlan-"+stamp); err != nil {
		return nil, err
	}
	warmName := "odb-warm-" + stamp
	fmt.Fprintf(out, "Docker network %s (plugin %s, -o pool.min=%d) on Neutron network %s (%s); macvlan on %s\n",
		warmName, o.Plugin, o.PoolMin, b.netName, b.cidr, o.Uplink)
	if b.warm, err = b.pluginNetwork(ctx, warmName, b.netID, b.cidr, o.PoolMin); err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "filling the pool...")
	if err := b.waitQuiet(ctx); err != nil {
		return nil, err
	}
	paths := []string{PathWarm, PathMacvlan, PathNone, PathOVNDocker}
	run := map[string]func(context.Context) (time.Duration, error){
		PathWarm:      func(ctx context.Context) (time.Duration, error) { return b.dockerRun(ctx, b.warm) },
		PathMacvlan:   func(ctx context.Context) (time.Duration, error) { return b.dockerRun(ctx, b.macvlan) },
		PathNone:      func(ctx context.Context) (time.Duration, error) { return b.dockerRun(ctx, "none") },
		PathOVNDocker: b.ovnDockerRun,
	}
	// One of each first, not counted: none pays for a first time alone.
	fmt.Fprintln(out, "one run of each, not counted...")
	for _, p := range paths {
		if _, err := b.measured(ctx, p, run[p]); err != nil {
			return nil, err
		}
	}
	var rounds []Round
	seen := map[string][]NeutronSeen{}
	for i := 0; i < o.Pairs; i++ {
		r := Round{}
		for _, p := range order(i, paths) {
			res, err := b.measured(ctx, p, run[p])
			if err != nil {
				if err := b.failed(p, err); err != nil {
					return nil, err
				}
				continue
			}
			r[p] = res.d
			seen[p] = append(seen[p], res.all)
		}
		rounds = append(rounds, r)
		b.progress(i, "rounds of "+strings.Join(paths, ", "))
	}
	rep = &DockerReport{Rows: DockerRows(rounds, paths, PathMacvlan, PathNone)}
	for i := range rep.Rows {
		rep.Rows[i].SetNeutron(seen[rep.Rows[i].Path])
		rep.Rows[i].Errors = b.errors[rep.Rows[i].Path]
	}

	if !o.SkipCold {
		if rep.Cold, err = b.coldRounds(ctx, stamp); err != nil {
			return rep, err
		}
	}
	fmt.Fprintln(out)
	PrintDocker(out, rep.Rows, rep.Cold, []Target{
		{Path: PathWarm, Max: TargetRatio, Label: "docker run --network ovn (warm)"},
		{Path: PathOVNDocker, Max: TargetRatio, Label: "ovn-docker run (agent)"},
	})
	fmt.Fprintf(out, "each run started once the agent had been idle %s (waited %s in all)\n", o.Settle, b.idleWait.Round(time.Second))
	if o.DockerCLI != "" {
		fmt.Fprintf(out, "docker paths: %s run, one process per run (as ovn-docker run is)\n", o.DockerCLI)
	} else {
		fmt.Fprintln(out, "docker paths: the docker CLI's API calls, made in-process (ovn-docker run is its own process)")
	}
	failed := 0
	for _, n := range b.errors {
		failed += n
	}
	if failed > 0 {
		return rep, fmt.Errorf("%d runs failed (see above); the table leaves them out", failed)
	}
	return rep, nil
}

// coldRounds measures the plugin's cold path: each cold run on a network of the plugin
// of its own with no pool (on the scratch Neutron network of the cold path), made before
// the run and removed after it, so that no port of an earlier run is there to be taken
// again (Docker's next container on a network gets the port parked for a removed one);
// each cold run paired with a macvlan run.
func (b *dockerBench) coldRounds(ctx context.Context, stamp string) (*ColdLine, error) {
	fmt.Fprintf(b.out, "cold path: a Docker network of the plugin with no pool per run, on Neutron network %s (%s)\n", b.coldNet.Name, b.coldCIDR)
	n := 0
	cold := func(ctx context.Context) (runResult, error) {
		n++
		id, err := b.pluginNetwork(ctx, fmt.Sprintf("odb-cold-%s-%d", stamp, n), b.coldNet.ID, b.coldCIDR, 0)
		if err != nil {
			return runResult{}, err
		}
		res, err := b.measured(ctx, pathCold, func(ctx context.Context) (time.Duration, error) { return b.dockerRun(ctx, id) })
		// Its removal releases the port parked for the removed container.
		if rerr := b.d.Docker.RemoveNetwork(ctx, id); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return res, err
	}
	mv := func(ctx context.Context) (time.Duration, error) { return b.dockerRun(ctx, b.macvlan) }
	fmt.Fprintln(b.out, "cold path: one run, not counted...")
	if _, err := cold(ctx); err != nil {
		return nil, err
	}
	var calls, background float64
	var rounds []ColdRound
	for i := 0; i < b.o.Pairs; i++ {
		var r ColdRound
		ok := true
		for _, p := range order(i, []string{pathCold, PathMacvlan}) {
			var res runResult
			var err error
			if p == pathCold {
				res, err = cold(ctx)
			} else {
				res, err = b.measured(ctx, p, mv)
			}
			if err != nil {
				ok = false
				if err := b.failed(p, err); err != nil {
					return nil, err
				}
				continue
			}
			if p == pathCold {
				r.Total, r.Neutron = res.d, res.own
				calls, background = calls+res.ownCalls, background+res.background
			} else {
				r.Floor = res.d
			}
		}
		if ok {
			rounds = append(rounds, r)
		}
		b.progress(i, "cold runs paired with macvlan runs")
	}
	if len(rounds) == 0 {
		return nil, errors.New("no cold round succeeded")
	}
	c := Cold(rounds, calls/float64(len(rounds)), background/float64(len(rounds)), TargetCold)
	c.Errors = b.errors[pathCold]
	return &c, nil
}

// runResult is one measured run, and what the agent asked of Neutron meanwhile.
type runResult struct {
	d   time.Duration
	all NeutronSeen // every Neutron request
	// own is the time of those the run waits for (not backgroundCalls), ownCalls their
	// count, background the count of the others.
	own                  time.Duration
	ownCalls, background float64
}

// neutronDelta is what the agent asked of Neutron between two scrapes of its metrics
// (its requests' times are summed: two at once count twice).
func neutronDelta(s0, s1 metrics.Samples) runResult {
	diff := func(name string, m map[string]string) float64 { return s1.Sum(name, m) - s0.Sum(name, m) }
	neutron := map[string]string{"service": "neutron"}
	calls, secs := diff(metricCallN, neutron), diff(metricCallSum, neutron)
	r := runResult{all: NeutronSeen{Calls: calls, Time: seconds(secs)}}
	for _, c := range backgroundCalls {
		m := map[string]string{"service": "neutron", "call": c}
		secs -= diff(metricCallSum, m)
		n := diff(metricCallN, m)
		calls -= n
		r.background += n
	}
	r.own, r.ownCalls = seconds(secs), calls
	return r
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func (b *dockerBench) progress(i int, what string) {
	if (i+1)%5 == 0 || i+1 == b.o.Pairs {
		fmt.Fprintf(b.out, "%d/%d %s\n", i+1, b.o.Pairs, what)
	}
}

// measured waits for the agent to be idle, then times one run, and reads from the
// agent's metrics what it asked of Neutron meanwhile.
func (b *dockerBench) measured(ctx context.Context, path string, fn func(context.Context) (time.Duration, error)) (runResult, error) {
	if err := b.waitQuiet(ctx); err != nil {
		return runResult{}, err
	}
	s0, err := b.d.Metrics(ctx)
	if err != nil {
		return runResult{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	d, err := fn(rctx)
	if err != nil {
		return runResult{}, fmt.Errorf("%s: %w", path, err)
	}
	s1, err := b.d.Metrics(ctx)
	if err != nil {
		return runResult{}, err
	}
	r := neutronDelta(s0, s1)
	r.d = d
	b.d.Log.Debug("bench run", "path", path, "ms", float64(d.Microseconds())/1000,
		"neutron_calls", r.all.Calls, "neutron_ms", r.all.Time.Milliseconds())
	return r, nil
}

// dockerRun is `docker run --rm --network net IMAGE true`, timed as its user sees it:
// the docker CLI's own process when DockerCLI is set, else its API calls.
func (b *dockerBench) dockerRun(ctx context.Context, net string) (time.Duration, error) {
	if b.o.DockerCLI != "" {
		return b.process(ctx, b.o.DockerCLI, "run", "--rm", "--network", net, b.o.Image, "true")
	}
	cfg := &container.Config{Image: b.o.Image, Cmd: []string{"true"}}
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(net)}
	// The docker CLI names the network in the endpoint settings too.
	eps := map[string]*network.EndpointSettings{net: {}}
	t0 := time.Now()
	code, err := b.d.Docker.RunRemoved(ctx, cfg, hc, eps, nil, nil)
	d := time.Since(t0)
	if err == nil && code != 0 {
		err = fmt.Errorf("the container exited with %d", code)
	}
	return d, err
}

// ovnDockerRun is `ovn-docker --network LS run --rm IMAGE true`, the binary itself.
func (b *dockerBench) ovnDockerRun(ctx context.Context) (time.Duration, error) {
	args := append(slices.Clone(b.o.GlobalArgs), "--network", b.netName, "run", "--rm", b.o.Image, "true")
	return b.process(ctx, b.o.Exe, args...)
}

// process times one run of a command, from its start to its end.
func (b *dockerBench) process(ctx context.Context, exe string, args ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%s %s: %w: %s", exe, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return d, nil
}

// waitQuiet waits until the agent has been idle for Settle: no Neutron request in
// flight, the bench network's pool full and nothing filling it, and every interface on
// the bench's Neutron networks at rest (a pool's ready one, or one parked for a stopped
// container), none being made or released. So that no run pays for the previous one's
// background work.
func (b *dockerBench) waitQuiet(ctx context.Context) error {
	t0 := time.Now()
	defer func() { b.idleWait += time.Since(t0) }()
	deadline := t0.Add(b.o.Quiet)
	var since time.Time
	why := ""
	for {
		busy, err := b.busy(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		switch {
		case busy != "":
			since, why = time.Time{}, busy
		case since.IsZero():
			since = now
		case now.Sub(since) >= b.o.Settle:
			return nil
		}
		if now.After(deadline) {
			return fmt.Errorf("the agent was not idle for %s within %s (%s)", b.o.Settle, b.o.Quiet, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// busy says what keeps the agent busy, "" when nothing does.
func (b *dockerBench) busy(ctx context.Context) (string, error) {
	ss, err := b.d.Metrics(ctx)
	if err != nil {
		return "", err
	}
	if n := ss.Sum(metricInFlight, map[string]string{"service": "neutron"}); n > 0 {
		return fmt.Sprintf("%.0f Neutron requests in flight", n), nil
	}
	pools, err := b.d.Agent.Pools(ctx)
	if err != nil {
		return "", err
	}
	ours := func(id string) bool { return id != "" && (id == b.netID || id == b.coldNet.ID) }
	for _, p := range pools {
		if ours(p.NetworkID) && (p.Ready < p.Target || p.Filling > 0) {
			return fmt.Sprintf("pool %s: %d ready of %d, %d filling", p.Key, p.Ready, p.Target, p.Filling), nil
		}
	}
	ifs, err := b.d.Agent.Interfaces(ctx)
	if err != nil {
		return "", err
	}
	for _, i := range ifs {
		if ours(i.NetworkID) && !atRest(i.State) {
			return fmt.Sprintf("interface %s on %s: %s", i.Port, i.Network, i.State), nil
		}
	}
	return "", nil
}

// atRest says whether an interface in that state (as ovn-docker ps says it) waits for
// nothing: a pool's ready one, or one parked for a stopped container (released with the
// container, or taken again by the network's next container).
func atRest(state string) bool {
	return state == "ready (pool)" || strings.HasPrefix(state, "stopped")
}

// findNetwork finds a Neutron network by name or ID.
func (b *dockerBench) findNetwork(ctx context.Context, ref string) (api.Network, error) {
	nets, err := b.d.Agent.Networks(ctx)
	if err != nil {
		return api.Network{}, err
	}
	for _, n := range nets {
		if n.Name == ref || n.ID == ref {
			return n, nil
		}
	}
	return api.Network{}, fmt.Errorf("no Neutron network %s", ref)
}

// scratchNetwork makes a Neutron network through the agent (ovn-docker create network).
func (b *dockerBench) scratchNetwork(ctx context.Context, name string) (api.Network, error) {
	res, err := b.d.Agent.CreateNetwork(ctx, api.CreateNetworkRequest{Name: name})
	if err != nil {
		return api.Network{}, err
	}
	fmt.Fprintf(b.out, "scratch Neutron network %s: %s\n", name, res.Note)
	if _, err := firstV4(res.Network); err != nil {
		_, derr := b.d.Agent.DeleteNetwork(context.WithoutCancel(ctx), res.Network.ID)
		return api.Network{}, errors.Join(err, derr)
	}
	return res.Network, nil
}

// firstV4 is a network's first IPv4 subnet.
func firstV4(n api.Network) (string, error) {
	for _, c := range n.CIDRs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() {
			return p.Masked().String(), nil
		}
	}
	return "", fmt.Errorf("neutron network %s has no IPv4 subnet", n.Name)
}

// mustV4 is firstV4 of a network known to have one.
func mustV4(n api.Network) string {
	c, _ := firstV4(n)
	return c
}

// pluginNetwork makes a Docker network of the plugin on a Neutron network, with a pool
// when poolMin > 0. Its subnet is the Neutron subnet, as ovn-docker run wants of the
// networks it uses.
func (b *dockerBench) pluginNetwork(ctx context.Context, name, netID, cidr string, poolMin int) (string, error) {
	opts := map[string]string{"neutron.net.id": netID}
	if poolMin > 0 {
		opts["pool.min"] = strconv.Itoa(poolMin)
	}
	id, err := b.d.Docker.CreateNetwork(ctx, docker.NetworkSpec{Name: name, Driver: b.o.Plugin, Options: opts,
		IPAMOptions: map[string]string{"neutron.net.id": netID}, Subnet: cidr, Labels: map[string]string{"org.ovn-docker.bench": "1"}})
	if err != nil {
		return "", err
	}
	b.made = append(b.made, id)
	return id, nil
}

// macvlanNetwork makes the macvlan network on the uplink, on a subnet that overlaps none
// of the VM's addresses and routes, Docker's networks or the Neutron networks.
func (b *dockerBench) macvlanNetwork(ctx context.Context, name string) error {
	used, err := b.usedPrefixes(ctx)
	if err != nil {
		return err
	}
	sub, ok := freeSubnet(used)
	if !ok {
		return errors.New("no free /24 in 198.18.0.0/15 for the macvlan network")
	}
	id, err := b.d.Docker.CreateBuiltinNetwork(ctx, name, "macvlan", map[string]string{"parent": b.o.Uplink}, sub.String(),
		map[string]string{"org.ovn-docker.bench": "1"})
	if err != nil {
		return err
	}
	b.macvlan = id
	b.made = append(b.made, id)
	return nil
}

func (b *dockerBench) usedPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	var used []netip.Prefix
	add := func(s string) {
		if p, err := netip.ParsePrefix(s); err == nil && p.Bits() > 0 {
			used = append(used, p.Masked())
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("the VM's addresses: %w", err)
	}
	for _, a := range addrs {
		add(a.IPNet.String())
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("the VM's routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst != nil {
			add(r.Dst.String())
		}
	}
	dnets, err := b.d.Docker.Networks(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, n := range dnets {
		for _, s := range n.Subnets {
			add(s)
		}
	}
	nnets, err := b.d.Agent.Networks(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range nnets {
		for _, c := range n.CIDRs {
			add(c)
		}
	}
	return used, nil
}

// cleanup removes the bench's Docker networks (and those ovn-docker run made on its
// Neutron network meanwhile), waits for the agent to release what they held, and
// deletes the scratch Neutron networks.
func (b *dockerBench) cleanup(ctx context.Context, before []docker.Network, scratch []api.Network) error {
	var errs []error
	had := map[string]bool{}
	for _, n := range before {
		had[n.ID] = true
	}
	if after, err := b.d.Docker.Networks(ctx, b.o.Plugin); err == nil {
		for _, n := range after {
			if !had[n.ID] && !slices.Contains(b.made, n.ID) && b.cidr != "" && slices.Contains(n.Subnets, b.cidr) {
				b.made = append(b.made, n.ID)
			}
		}
	} else {
		errs = append(errs, err)
	}
	for _, id := range b.made {
		if err := b.d.Docker.RemoveNetwork(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	if len(scratch) == 0 {
		return errors.Join(errs...)
	}
	// The ports the networks held go in the background: the networks go after them.
	if err := b.waitQuiet(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, n := range scratch {
		var err error
		for try := 0; try < 3; try++ {
			if _, err = b.d.Agent.DeleteNetwork(ctx, n.ID); err == nil {
				break
			}
			time.Sleep(2 * time.Second)
		}
		if err != nil {
			err = fmt.Errorf("delete scratch network %s: %w", n.Name, err)
			if pools, perr := b.d.Agent.Pools(ctx); perr == nil {
				for _, p := range pools {
					if p.NetworkID == n.ID {
						err = fmt.Errorf("%w: the agent still keeps a pool on it (%s, %d ready) after its Docker network went; "+
							"stop the agent, then ovn-docker gc --drain-pools and ovn-docker delete network %s", err, p.Key, p.Ready, n.Name)
					}
				}
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
