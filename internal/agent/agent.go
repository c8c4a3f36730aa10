// Package agent is ovn-docker's one agent per VM (ovn-docker daemon): it holds the
// service (and so the engine, the state and the pools) for as long as the VM runs, and
// serves it to every front end: the local API on <state-dir>/agent.sock for the CLI and
// the CNI shim, Docker's network and IPAM plugin for docker's own commands. It also
// does what no front end can: it finishes what an interrupted agent left, keeps the
// pools filled, and reconciles with Docker.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/dockerplugin"
	"github.com/ovn-docker/ovn-docker/internal/metrics"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/service"
	"github.com/ovn-docker/ovn-docker/internal/unixsock"
)

// PoolSpec is a pool the agent keeps: interfaces ready on a network.
type PoolSpec struct {
	Network  string // name or ID
	Min, Max int
}

// Config is an agent's wiring.
type Config struct {
	Service service.Config
	// Version is the build's, for status.
	Version string
	// Timeout bounds each call of a front end (and the drain on shutdown).
	Timeout time.Duration

	PluginDir  string // where dockerd finds plugin sockets
	PluginName string // the plugin's name: docker's -d and --ipam-driver

	ReconcileEvery time.Duration // how often to release what Docker forgot
	ReconcileGrace time.Duration // how long something Docker does not know is kept

	Pools        []PoolSpec
	PoolBatch    int           // ports per bulk Neutron call
	PoolCalls    int           // pool batches in flight at once
	PoolRefill   time.Duration // how often pools are checked
	PoolReuse    bool          // a released pool interface goes back, scrubbed
	MetricsAddr  string        // unix:/path or 127.0.0.1:PORT; "" is <state-dir>/metrics.sock
	MetricsCert  string
	MetricsKey   string
	NotifySocket string        // systemd's NOTIFY_SOCKET, when run by systemd
	Watchdog     time.Duration // systemd's WATCHDOG_USEC: tell it the agent lives, twice as often
}

// Run runs the agent until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.ReconcileEvery <= 0 || cfg.ReconcileGrace <= 0 {
		return api.Invalid(errors.New("--reconcile-every and --reconcile-grace must be positive"))
	}
	log := cfg.Service.Log
	if log == nil {
		log = slog.Default()
		cfg.Service.Log = log
	}
	alog := log.With("component", "agent")
	m := metrics.New()
	cfg.Service.Metrics = m
	cfg.Service.DockerPlugin = cfg.PluginName
	svc := service.New(cfg.Service)
	defer svc.Close()
	scfg := svc.Config()

	sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	st, err := svc.Store()
	if err != nil {
		return err
	}
	unlock, err := dockerplugin.LockDaemon(st.Dir())
	if err != nil {
		return err
	}
	defer unlock()
	// Refused at once, with doctor's words, rather than at the first container.
	if err := svc.Preflight(sctx); err != nil {
		return err
	}
	// Flows die with ovs-vswitchd: the agent's start is where a restarted VM gets them back.
	if n, err := svc.EnsureGuard(sctx); err != nil {
		return err
	} else if n > 0 {
		alog.Info("ra guard installed", "flow_mods", n)
	}
	eng, err := svc.Engine(sctx)
	if err != nil {
		return err
	}
	if sess, _ := svc.Session(sctx); sess != nil && sess.Method == "token" {
		alog.Warn("the agent holds a token it cannot renew: it stops working when the token expires; give it a password or an application credential")
	}
	nc, err := svc.Neutron(sctx)
	if err != nil {
		return err
	}
	sw, err := svc.OVS(sctx)
	if err != nil {
		return err
	}
	if _, err := svc.Docker(sctx); err != nil {
		alog.Warn("Docker does not answer yet: the agent reconciles once it does", "err", err)
	}
	ecfg := eng.Config()
	// Pools: their interfaces already in the state are theirs again. The plugin keeps
	// the pools Docker networks ask for in them too.
	pools := pool.New(eng, pool.Config{Batch: cfg.PoolBatch, MaxNeutron: cfg.PoolCalls, Refill: cfg.PoolRefill,
		Reuse: cfg.PoolReuse, Log: log, Metrics: m})
	svc.SetPools(pools)
	p, err := dockerplugin.New(dockerplugin.Config{
		Name: cfg.PluginName, Engine: eng, Neutron: dockerplugin.NeutronAPI{Client: nc},
		Docker: serviceDocker{svc}, Host: dockerplugin.VMHost{Switch: sw, Bridge: ecfg.Bridge}, Log: log,
		Timeout: cfg.Timeout, Grace: cfg.ReconcileGrace, Pools: pools,
		Release: func(ctx context.Context, id string) error { return pool.Release(ctx, eng, id) },
	})
	if err != nil {
		return err
	}
	defer p.Close()
	if err := pools.Adopt(sctx); err != nil {
		alog.Warn("pools: some interfaces could not be checked", "err", err)
	}
	if err := p.Start(sctx); err != nil {
		alog.Warn("start: not everything was reconciled; the next pass tries again", "err", err)
		svc.NoteError("reconcile at start", err)
	}
	pl, err := dockerplugin.Listen(cfg.PluginDir, cfg.PluginName)
	if err != nil {
		return err
	}
	defer pl.Close()
	al, err := unixsock.Listen(filepath.Join(scfg.StateDir, api.SocketName))
	if err != nil {
		return fmt.Errorf("the agent's socket: %w", err)
	}
	defer al.Close()

	mctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	goBackground := func(fn func()) {
		wg.Add(1)
		go func() { defer wg.Done(); fn() }()
	}

	// Metrics, on a unix socket unless told otherwise.
	addr := cfg.MetricsAddr
	if addr == "" {
		addr = "unix:" + filepath.Join(st.Dir(), "metrics.sock")
	}
	ml, err := metrics.Listen(addr, cfg.MetricsCert, cfg.MetricsKey)
	if err != nil {
		return err
	}
	goBackground(func() {
		if err := m.Serve(mctx, ml); err != nil {
			alog.Warn("metrics stopped", "err", err)
		}
	})

	for _, sp := range cfg.Pools {
		n, err := nc.FindNetwork(sctx, sp.Network)
		if err != nil {
			return fmt.Errorf("--pool %s: %w", sp.Network, err)
		}
		key, err := pools.Add(pool.Spec{Network: n, Min: sp.Min, Max: sp.Max})
		if err != nil {
			return err
		}
		alog.Info("pool", "network", n.Name, "min", sp.Min, "max", sp.Max, "key", key)
	}
	// Always: Docker networks may ask for pools at any time.
	goBackground(func() { pools.Run(mctx) })
	goBackground(func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			if used, err := eng.UsedVLANs(mctx); err == nil {
				m.VLANsInUse.Set(float64(len(used)))
			}
			select {
			case <-mctx.Done():
				return
			case <-t.C:
			}
		}
	})
	goBackground(func() { p.Maintain(mctx, cfg.ReconcileEvery) })
	// Docker's events: a container removed releases its ports at once, a sandbox Docker
	// started again gets its ports back in its new namespace (see lifecycle.go).
	lw := &watcher{src: serviceDocker{svc}, h: svc, log: alog, now: time.Now, after: time.After, noteError: svc.NoteError}
	goBackground(func() { lw.run(mctx) })
	// The guard is put back as soon as ovs-vswitchd comes back or the uplink is re-added.
	goBackground(func() {
		svc.WatchGuard(mctx, func(n int, err error) {
			if err != nil {
				alog.Warn("ra guard", "err", err)
			} else if n > 0 {
				alog.Info("ra guard installed", "flow_mods", n)
			}
		})
	})

	svc.SetAgent(api.AgentInfo{Running: true, Version: cfg.Version, PID: os.Getpid(), Since: time.Now().UTC(),
		VIFID: ecfg.VIFID, Bridge: ecfg.Bridge})
	srv := api.NewServer(svc, log)
	apiDone := make(chan error, 1)
	go func() { apiDone <- unixsock.Serve(ctx, al, srv.Handler(), cfg.Timeout, alog) }()

	alog.Info("ready", "plugin", cfg.PluginName, "plugin_socket", pl.Path(), "api_socket", al.Path(), "vif_id", ecfg.VIFID,
		"bridge", ecfg.Bridge, "state", st.Dir(), "metrics", addr)
	notify(cfg.NotifySocket, "READY=1", alog)
	goBackground(func() {
		// Alive: the state answers within the interval (an agent stuck on its lock is not).
		watchdog(mctx, cfg.NotifySocket, cfg.Watchdog, func() error {
			wctx, cancel := context.WithTimeout(mctx, cfg.Watchdog/2)
			defer cancel()
			return eng.Ping(wctx)
		}, alog)
	})
	err = dockerplugin.Serve(ctx, pl, p.Handler(), cfg.Timeout, log)
	notify(cfg.NotifySocket, "STOPPING=1", alog)
	stop()
	if aerr := <-apiDone; aerr != nil {
		err = errors.Join(err, aerr)
	}
	wg.Wait()
	alog.Info("stopped")
	return err
}

// serviceDocker is the plugin's Docker through the service, which connects again after
// dockerd restarts or starts late.
type serviceDocker struct{ svc *service.Service }

var _ dockerplugin.Docker = serviceDocker{}

func (d serviceDocker) Networks(ctx context.Context, driver string) ([]docker.Network, error) {
	c, err := d.svc.Docker(ctx)
	if err != nil {
		return nil, err
	}
	return c.Networks(ctx, driver)
}

func (d serviceDocker) Inspect(ctx context.Context, ref string) (docker.Info, error) {
	c, err := d.svc.Docker(ctx)
	if err != nil {
		return docker.Info{}, err
	}
	return c.Inspect(ctx, ref)
}

func (d serviceDocker) Network(ctx context.Context, ref string) (docker.Network, error) {
	c, err := d.svc.Docker(ctx)
	if err != nil {
		return docker.Network{}, err
	}
	return c.Network(ctx, ref)
}
