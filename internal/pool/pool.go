// Package pool keeps container interfaces ready before containers ask for them: Neutron
// ports made in bulk, already subports of the VM's trunk with their VLANs, their veth
// pairs and OVS access ports made, and their data path proven by OVN's DHCP answer. An
// attach from a pool is then a namespace move and address configuration, with no
// Neutron call; a detach returns the interface scrubbed, or deletes it. The pool refills
// in the background within a limit of concurrent Neutron calls, and shrinks (and says
// so) when Neutron runs out of addresses or quota, while attaches fall back to the cold
// path. Its interfaces are attachments of the state file marked with the pool's key, so
// a restarted daemon finds them again.
package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/metrics"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Spec is one pool: interfaces on a network with security groups.
type Spec struct {
	Network        *neutron.Network
	SecurityGroups []string // IDs; nil: the project's default
	Min, Max       int      // keep at least Min ready; never hold more than Max
}

// Key identifies the pool of a network and security groups.
func Key(networkID string, sgs []string) string {
	s := append([]string(nil), sgs...)
	slices.Sort(s)
	return "pool:" + networkID + ":" + strings.Join(s, ",")
}

// Config tunes the pools of one engine.
type Config struct {
	Batch      int           // ports per bulk Neutron call (default 10)
	Refill     time.Duration // how often depths are checked (default 2 s)
	MaxNeutron int           // batches in flight at once (default 2)
	Reuse      bool          // a detach returns the interface to its pool instead of deleting it
	Backoff    time.Duration // wait after Neutron refused more (default 1 min)
	// Quiet is how long after a pool's interface was taken its refill waits, while the
	// pool still holds one: the refill's Neutron and OVN work on the VM's and the cloud's
	// CPUs would otherwise slow the very container start that took it (default 1 s;
	// negative: none). An empty pool is refilled at once.
	Quiet   time.Duration
	Log     *slog.Logger
	Metrics *metrics.Metrics // optional
}

// Pools holds the pools of one engine.
type Pools struct {
	eng  *engine.Engine
	cfg  Config
	log  *slog.Logger
	sem  chan struct{}
	kick chan struct{}

	mu       sync.Mutex
	pools    map[string]*pool
	growing  sync.WaitGroup // refills under way
	lastTake time.Time      // when an interface was last taken (see Config.Quiet)
}

type pool struct {
	key     string
	holders map[string]bool // who declared it: the daemon's --pool, Docker networks
	spec    Spec
	target  int       // Min, lowered when Neutron runs out
	until   time.Time // no refill before this (after a refusal)
	filling int       // interfaces being made
}

// New makes an empty set of pools for the engine.
func New(eng *engine.Engine, cfg Config) *Pools {
	if cfg.Batch <= 0 {
		cfg.Batch = 10
	}
	if cfg.Refill <= 0 {
		cfg.Refill = 2 * time.Second
	}
	if cfg.MaxNeutron <= 0 {
		cfg.MaxNeutron = 2
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Minute
	}
	if cfg.Quiet == 0 {
		cfg.Quiet = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Pools{eng: eng, cfg: cfg, log: cfg.Log, sem: make(chan struct{}, cfg.MaxNeutron),
		kick: make(chan struct{}, 1), pools: map[string]*pool{}}
}

// Add declares a pool and returns its key. Declaring it again updates its sizes.
func (p *Pools) Add(s Spec) (string, error) { return p.AddFor("agent", s) }

// AddFor declares a pool for holder (a Docker network that asked for one, say); the
// pool lives until its last holder removes it (RemoveFor).
func (p *Pools) AddFor(holder string, s Spec) (string, error) {
	if s.Network == nil || s.Network.ID == "" {
		return "", errors.New("pool: no network")
	}
	if s.Min < 0 || s.Max < s.Min || s.Max == 0 {
		return "", fmt.Errorf("pool of %s: min %d, max %d: want 0 <= min <= max, max > 0", s.Network.Name, s.Min, s.Max)
	}
	key := Key(s.Network.ID, s.SecurityGroups)
	// Published in the state: the CLI's rm follows the pool's policy too.
	err := p.eng.SetPoolPolicy(context.Background(), key, state.PoolPolicy{Network: s.Network.ID, Min: s.Min, Max: s.Max, Reuse: p.cfg.Reuse})
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.pools[key]; old != nil {
		old.spec, old.target = s, s.Min
		old.holders[holder] = true
	} else {
		p.pools[key] = &pool{key: key, spec: s, target: s.Min, holders: map[string]bool{holder: true}}
	}
	p.poke()
	return key, nil
}

// RemoveFor says holder no longer wants the pool; once nobody does, the pool is no
// longer refilled and its ready interfaces are released.
func (p *Pools) RemoveFor(ctx context.Context, holder, key string) error {
	p.mu.Lock()
	pl := p.pools[key]
	if pl == nil {
		p.mu.Unlock()
		return nil
	}
	delete(pl.holders, holder)
	if len(pl.holders) > 0 {
		p.mu.Unlock()
		return nil
	}
	delete(p.pools, key)
	p.mu.Unlock()
	if err := p.eng.DropPoolPolicy(ctx, key); err != nil {
		return err
	}
	atts, err := p.eng.AttachmentsOfKind(ctx, state.OwnerPool)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range atts {
		if a.Pool == key && a.Phase == state.PhaseReady && a.PID == 0 {
			errs = append(errs, p.eng.Detach(ctx, a.ID))
		}
	}
	return errors.Join(errs...)
}

// Declared says whether a pool of that key is kept.
func (p *Pools) Declared(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pools[key] != nil
}

// Keys lists the declared pools.
func (p *Pools) Keys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.pools))
	for k := range p.pools {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// took notes that an interface was taken, and has the refill come (see Config.Quiet).
func (p *Pools) took() {
	p.mu.Lock()
	p.lastTake = time.Now()
	p.mu.Unlock()
	p.poke()
}

// quiet is how long the refill still waits after the last take.
func (p *Pools) quiet() time.Duration {
	if p.cfg.Quiet < 0 {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Until(p.lastTake.Add(p.cfg.Quiet))
}

func (p *Pools) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Depth counts the ready interfaces of a pool.
func (p *Pools) Depth(ctx context.Context, key string) (int, error) {
	return p.countOf(ctx, key, func(a *state.Attachment) bool { return a.Phase == state.PhaseReady })
}

// held counts every interface of a pool, ready or on its way.
func (p *Pools) held(ctx context.Context, key string) (int, error) {
	return p.countOf(ctx, key, func(*state.Attachment) bool { return true })
}

// countOf counts the interfaces of a pool that match.
func (p *Pools) countOf(ctx context.Context, key string, match func(*state.Attachment) bool) (int, error) {
	atts, err := p.eng.AttachmentsOfKind(ctx, state.OwnerPool)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range atts {
		if a.Pool == key && match(a) {
			n++
		}
	}
	return n, nil
}

// Run refills the pools until ctx ends.
func (p *Pools) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Refill)
	defer t.Stop()
	// The batches under way finish (or undo what they made) before Run returns: an
	// agent that stops leaves no interface half made.
	defer p.growing.Wait()
	for {
		for _, key := range p.Keys() {
			p.refill(ctx, key)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
	}
}

// Fill tops one pool up to its target and waits for it: the bench and tests use it.
func (p *Pools) Fill(ctx context.Context, key string) error {
	for {
		n, err := p.Depth(ctx, key)
		if err != nil {
			return err
		}
		p.mu.Lock()
		pl := p.pools[key]
		p.mu.Unlock()
		if pl == nil {
			return fmt.Errorf("no pool %s", key)
		}
		if n >= pl.target {
			return nil
		}
		if err := p.grow(ctx, pl, min(p.cfg.Batch, pl.target-n)); err != nil {
			return err
		}
	}
}

// refill starts batches for a pool that is below its target, in the background.
func (p *Pools) refill(ctx context.Context, key string) {
	p.mu.Lock()
	pl := p.pools[key]
	if pl == nil || time.Now().Before(pl.until) {
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	held, err := p.held(ctx, key)
	if err != nil {
		p.log.Warn("pool: read state", "pool", key, "err", err)
		return
	}
	ready, _ := p.Depth(ctx, key)
	p.gauge(key, ready)
	if wait := p.quiet(); ready > 0 && wait > 0 {
		// A container is starting with what it took: refill once it is done.
		time.AfterFunc(wait, p.poke)
		return
	}
	p.mu.Lock()
	want := pl.target - held - pl.filling
	if room := pl.spec.Max - held - pl.filling; want > room {
		want = room
	}
	if want <= 0 {
		p.mu.Unlock()
		return
	}
	n := min(want, p.cfg.Batch)
	pl.filling += n
	p.mu.Unlock()
	p.growing.Add(1)
	go func() {
		defer p.growing.Done()
		defer func() {
			p.mu.Lock()
			pl.filling -= n
			p.mu.Unlock()
			p.poke()
		}()
		if err := p.grow(ctx, pl, n); err != nil && ctx.Err() == nil {
			p.log.Warn("pool: refill failed", "pool", key, "network", pl.spec.Network.Name, "err", err)
		}
	}()
}

// grow makes n interfaces for a pool: one bulk port call, one add_subports, then the
// local plumbing and probe of each.
func (p *Pools) grow(ctx context.Context, pl *pool, n int) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	atts, err := p.eng.PrepareBatch(ctx, engine.Request{
		Owner: pl.key, OwnerKind: state.OwnerPool, Pool: pl.key, Network: pl.spec.Network,
		SecurityGroups: pl.spec.SecurityGroups, AtRest: true,
	}, n)
	<-p.sem
	if err != nil {
		if reason := exhausted(err); reason != "" {
			p.shrink(ctx, pl, reason, err)
		}
		return err
	}
	var errs []error
	for _, a := range atts {
		if _, err := p.eng.Plumb(ctx, a.ID, engine.Request{Owner: pl.key, OwnerKind: state.OwnerPool}); err != nil {
			errs = append(errs, err)
			// A pool interface that cannot be plumbed is of no use: release it.
			if derr := p.eng.Detach(context.WithoutCancel(ctx), a.ID); derr != nil {
				errs = append(errs, derr)
			}
		}
	}
	if !p.Declared(pl.key) {
		// Removed while these were made: nobody will take them.
		for _, a := range atts {
			errs = append(errs, p.eng.Detach(context.WithoutCancel(ctx), a.ID))
		}
		return errors.Join(errs...)
	}
	if ready, err := p.Depth(ctx, pl.key); err == nil {
		p.gauge(pl.key, ready)
	}
	return errors.Join(errs...)
}

// exhausted tells a refusal that more requests would not cure: no addresses left in the
// subnet, or the project's port quota used up.
func exhausted(err error) string {
	switch {
	case errors.Is(err, neutron.ErrNoAddresses):
		return "no-addresses"
	case errors.Is(err, neutron.ErrOverQuota):
		return "quota"
	}
	return ""
}

// shrink lowers a pool's target to what it holds and pauses its refills.
func (p *Pools) shrink(ctx context.Context, pl *pool, reason string, cause error) {
	held, _ := p.held(ctx, pl.key)
	p.mu.Lock()
	old := pl.target
	if held < pl.target {
		pl.target = held
	}
	pl.until = time.Now().Add(p.cfg.Backoff)
	p.mu.Unlock()
	p.log.Warn("pool shrinks: Neutron refuses more ports; attaches beyond it take the cold path",
		"pool", pl.key, "network", pl.spec.Network.Name, "reason", reason, "target", pl.target, "was", old, "err", cause)
	if p.cfg.Metrics != nil {
		p.cfg.Metrics.PoolShrinks.WithLabelValues(pl.key, reason).Inc()
	}
	// Try the declared size again later: addresses and quota come back.
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(p.cfg.Backoff):
			p.mu.Lock()
			pl.target = pl.spec.Min
			p.mu.Unlock()
			p.poke()
		}
	}()
}

func (p *Pools) gauge(key string, n int) {
	if p.cfg.Metrics != nil {
		p.cfg.Metrics.PoolDepth.WithLabelValues(key).Set(float64(n))
	}
}

// Attach serves an attach from the request's pool when it has a ready interface (warm),
// else the cold way, through the same door as any process of the VM (Attach); these
// pools count it and fill again once the takes are over. It reports whether the pool
// served it.
func (p *Pools) Attach(ctx context.Context, req engine.Request) (*state.Attachment, bool, error) {
	t0 := time.Now()
	att, warm, err := Attach(ctx, p.eng, req)
	p.observe(req, warm, t0)
	if p.cfg.Metrics != nil {
		switch {
		case err != nil && !warm:
			p.cfg.Metrics.AttachErrors.WithLabelValues("cold").Inc()
		case err == nil && !warm:
			p.cfg.Metrics.Attach.WithLabelValues("cold").Observe(time.Since(t0).Seconds())
		}
	}
	return att, warm, err
}

// Claim is the package's Claim, counted by these pools as Attach is.
func (p *Pools) Claim(ctx context.Context, req engine.Request) (*state.Attachment, error) {
	t0 := time.Now()
	att, err := Claim(ctx, p.eng, req)
	if err == nil {
		p.observe(req, att != nil, t0)
	}
	return att, err
}

// observe counts a request that a declared pool of these pools could serve: a hit
// (the refill then waits for the takes to end), or a miss (the refill starts now).
func (p *Pools) observe(req engine.Request, hit bool, t0 time.Time) {
	key := Key(req.Network.ID, req.SecurityGroups)
	if !p.Declared(key) || !Fits(req) {
		return
	}
	p.count(key, hit, "warm", t0)
	if hit {
		p.took()
	} else {
		p.poke()
	}
}

func (p *Pools) count(key string, hit bool, path string, t0 time.Time) {
	if p.cfg.Metrics == nil {
		return
	}
	if hit {
		p.cfg.Metrics.PoolHits.WithLabelValues(key).Inc()
		p.cfg.Metrics.Attach.WithLabelValues(path).Observe(time.Since(t0).Seconds())
	} else {
		p.cfg.Metrics.PoolMisses.WithLabelValues(key).Inc()
	}
}

// Detach releases an attachment: back into the pool it was made for (scrubbed) when
// that pool's policy reuses interfaces and it has room, else deleted.
func (p *Pools) Detach(ctx context.Context, attID string) error { return Release(ctx, p.eng, attID) }

// Release is Detach for any process of the VM: the pool's policy comes from the state,
// where the daemon published it.
func Release(ctx context.Context, eng *engine.Engine, attID string) error {
	home, _ := eng.PoolHome(ctx, attID)
	if home.Policy != nil && home.Policy.Reuse && home.Held < home.Policy.Max {
		var err error
		if home.InVM {
			err = eng.Shelve(ctx, attID, home.Pool)
		} else {
			err = eng.Return(ctx, attID, home.Pool)
		}
		if err == nil {
			return nil
		}
		slog.Default().Warn("pool: could not take the interface back; deleting it", "attachment", attID, "err", err)
	}
	return eng.Detach(ctx, attID)
}

// Adopt checks the pools' interfaces found in the state (a restarted daemon's): a
// ready one whose veth or access port is gone is released (the refill replaces it); one
// a dead run was making is left to Recover.
func (p *Pools) Adopt(ctx context.Context) error {
	cfg := p.eng.Config()
	links, err := cfg.Links.List(ctx, "odv")
	if err != nil {
		return err
	}
	ports, err := cfg.Switch.Ports(ctx, cfg.Bridge)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, l := range links {
		have["veth:"+l] = true
	}
	for _, pt := range ports {
		have["ovs:"+pt.Name] = true
	}
	var broken []string
	atts, _ := p.eng.AttachmentsOfKind(ctx, state.OwnerPool)
	for _, a := range atts {
		if a.Phase == state.PhaseReady && a.PID == 0 && (!have["veth:"+a.HostIf] || !have["ovs:"+a.HostIf]) {
			broken = append(broken, a.ID)
		}
	}
	var errs []error
	for _, id := range broken {
		p.log.Info("pool: an interface lost its plumbing while the daemon was away; releasing it", "attachment", id)
		errs = append(errs, p.eng.Detach(ctx, id))
	}
	return errors.Join(errs...)
}

// Drain releases every ready interface of the pools (the ones no container holds).
func (p *Pools) Drain(ctx context.Context) error {
	atts, err := p.eng.AttachmentsOfKind(ctx, state.OwnerPool)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range atts {
		if a.Phase == state.PhaseReady {
			errs = append(errs, p.eng.Detach(ctx, a.ID))
		}
	}
	return errors.Join(errs...)
}
