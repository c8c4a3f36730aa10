package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/dockerplugin"
	"github.com/ovn-docker/ovn-docker/internal/metrics"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Defaults of the daemon.
const (
	DefaultPluginDir  = "/run/docker/plugins"
	DefaultPluginName = "ovn"
)

const daemonLong = `Serve Docker's network driver and IPAM driver (one plugin) on the unix socket
<plugin-dir>/<plugin-name>.sock, readable only by root, where dockerd finds it. Then plain
docker commands put containers on Neutron networks:

  docker network create -d ovn --ipam-driver ovn [--subnet CIDR] LS1
  docker network create -d ovn --ipam-driver ovn -o neutron.net.name=LS1 --ipam-opt neutron.net.name=LS1 LS1
  docker run --network LS1 ...
  docker network connect LS2 CONTAINER / docker network disconnect LS2 CONTAINER
  docker network rm LS1

Neutron is the IPAM: each endpoint is a Neutron port (its MAC and IP), a subport of the
VM's trunk with a VLAN unique in this VM, and an access port on the VM's bridge, as with
"ovn-docker run" (the two share the state and so the VLANs). A network made without
-o neutron.net.* gets a Neutron network of its own, named after it and deleted with it;
an adopted one is left alone. The daemon authenticates like the other commands; give it
a password or an application credential, which it renews, rather than a token.

On start it finishes what an interrupted daemon left and reconciles with Docker: what
Docker still has keeps its plumbing, what it no longer knows is released. SIGTERM or
SIGINT stop it gracefully.

Pools (--pool NETWORK[:MIN[:MAX]], repeatable) keep interfaces ready on a network:
Neutron ports made in bulk, already subports of the VM's trunk, their veths and access
ports made and their data path proven. "ovn-docker run" in this VM takes one when it
finds one (the pool lives in the VM's state), and attaches with no Neutron call; the
daemon refills in the background (--pool-batch ports per Neutron call, at most
--pool-neutron-calls at once), shrinks a pool when Neutron runs out of addresses or
quota, and finds its pools' interfaces again after a restart.

Metrics (Prometheus) are served on --metrics: unix:/path, or a loopback address.`

// daemonPools are the pool flags of the daemon.
type daemonPools struct {
	specs                   []string
	batch, calls            int
	reuse                   bool
	refill                  time.Duration
	metricsListen           string
	metricsCert, metricsKey string
}

func newDaemonCmd(a *app) *cobra.Command {
	var dir, name string
	var every, grace time.Duration
	var dp daemonPools
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Serve Docker's network and IPAM plugin (docker network create -d ovn --ipam-driver ovn)",
		Long:  daemonLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("log-level") && a.getenv("OVN_DOCKER_LOG_LEVEL") == "" {
				// A daemon's log is its only account of what it did.
				log, err := newLogger(a.stderr, "info", a.redactor)
				if err != nil {
					return err
				}
				a.log = log
			}
			if every <= 0 || grace <= 0 {
				return errors.New("--reconcile-every and --reconcile-grace must be positive")
			}
			return a.daemon(cmd.Context(), dir, name, every, grace, dp)
		},
	}
	env := a.getenv
	cmd.Flags().StringVar(&dir, "plugin-dir", envOr(env, "OVN_DOCKER_PLUGIN_DIR", DefaultPluginDir), "folder where dockerd looks for plugin sockets")
	cmd.Flags().StringVar(&name, "plugin-name", envOr(env, "OVN_DOCKER_PLUGIN_NAME", DefaultPluginName), "the plugin's name: docker's -d and --ipam-driver")
	cmd.Flags().DurationVar(&every, "reconcile-every", 2*time.Minute, "how often to release what Docker forgot")
	cmd.Flags().DurationVar(&grace, "reconcile-grace", 2*time.Minute, "how long an address or pool Docker does not know is kept (Docker may be creating its endpoint)")
	cmd.Flags().StringArrayVar(&dp.specs, "pool", nil, "keep interfaces ready on a network: NETWORK[:MIN[:MAX]] (default 10:2*MIN); repeatable")
	cmd.Flags().IntVar(&dp.batch, "pool-batch", 10, "ports per bulk Neutron call when filling pools")
	cmd.Flags().IntVar(&dp.calls, "pool-neutron-calls", 2, "pool batches in flight at once")
	cmd.Flags().DurationVar(&dp.refill, "pool-refill", 2*time.Second, "how often pools are checked")
	cmd.Flags().BoolVar(&dp.reuse, "pool-reuse", false, "return a pool's interfaces to it, scrubbed, when their container goes (default: delete them)")
	cmd.Flags().StringVar(&dp.metricsListen, "metrics", envOr(env, "OVN_DOCKER_METRICS", ""), "serve Prometheus metrics on unix:/path, or 127.0.0.1:PORT with TLS (default: <state-dir>/metrics.sock)")
	cmd.Flags().StringVar(&dp.metricsCert, "metrics-tls-cert", "", "certificate (PEM) of a TCP metrics address")
	cmd.Flags().StringVar(&dp.metricsKey, "metrics-tls-key", "", "its key (PEM)")
	return cmd
}

// parsePool reads NETWORK[:MIN[:MAX]].
func parsePool(spec string) (string, int, int, error) {
	parts := strings.Split(spec, ":")
	if len(parts) > 3 || parts[0] == "" {
		return "", 0, 0, fmt.Errorf("--pool %q: want NETWORK[:MIN[:MAX]]", spec)
	}
	min, max := 10, 0
	var err error
	if len(parts) > 1 {
		if min, err = strconv.Atoi(parts[1]); err != nil || min < 0 {
			return "", 0, 0, fmt.Errorf("--pool %q: MIN is not a count", spec)
		}
	}
	max = 2 * min
	if len(parts) > 2 {
		if max, err = strconv.Atoi(parts[2]); err != nil || max < min || max < 1 {
			return "", 0, 0, fmt.Errorf("--pool %q: MAX must be a count of at least MIN and 1", spec)
		}
	}
	if max < 1 {
		max = 1
	}
	return parts[0], min, max, nil
}

func (a *app) daemon(ctx context.Context, dir, name string, every, grace time.Duration, dp daemonPools) error {
	log := a.log.With("component", "daemon")
	type poolSpec struct {
		network  string
		min, max int
	}
	var specs []poolSpec
	for _, sp := range dp.specs {
		n, min, max, err := parsePool(sp)
		if err != nil {
			return err
		}
		specs = append(specs, poolSpec{n, min, max})
	}
	a.metrics = metrics.New()
	sctx, cancel := a.withTimeout(ctx)
	defer cancel()
	st, err := a.store()
	if err != nil {
		return err
	}
	unlock, err := dockerplugin.LockDaemon(st.Dir())
	if err != nil {
		return err
	}
	defer unlock()
	eng, err := a.engine(sctx)
	if err != nil {
		return err
	}
	if a.session != nil && a.session.Method == "token" {
		log.Warn("the daemon holds a token it cannot renew: it stops working when the token expires; give it a password or an application credential")
	}
	nc, _ := a.neutron(sctx)
	sw, _ := a.ovs(sctx)
	dc := &lazyDocker{connect: func(ctx context.Context) (*docker.Client, error) { return docker.New(ctx, "") }}
	defer dc.close()
	if _, err := dc.client(sctx); err != nil {
		log.Warn("Docker does not answer yet: the daemon reconciles once it does", "err", err)
	}
	cfg := eng.Config()
	p, err := dockerplugin.New(dockerplugin.Config{
		Name: name, Engine: eng, Store: cfg.Store, Neutron: dockerplugin.NeutronAPI{Client: nc}, Docker: dc,
		Host: dockerplugin.VMHost{Switch: sw, Bridge: cfg.Bridge}, Log: a.log, Timeout: a.s.timeout, Grace: grace,
	})
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Start(sctx); err != nil {
		log.Warn("start: not everything was reconciled; the next pass tries again", "err", err)
	}
	l, err := dockerplugin.Listen(dir, name)
	if err != nil {
		return err
	}
	mctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup

	// Metrics, on a unix socket unless told otherwise.
	addr := dp.metricsListen
	if addr == "" {
		addr = "unix:" + filepath.Join(cfg.Store.Dir(), "metrics.sock")
	}
	ml, err := metrics.Listen(addr, dp.metricsCert, dp.metricsKey)
	if err != nil {
		stop()
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.metrics.Serve(mctx, ml); err != nil {
			log.Warn("metrics stopped", "err", err)
		}
	}()

	// Pools: their interfaces already in the state are theirs again.
	pools := pool.New(eng, pool.Config{Batch: dp.batch, MaxNeutron: dp.calls, Refill: dp.refill, Reuse: dp.reuse,
		Log: a.log, Metrics: a.metrics})
	if len(specs) > 0 {
		if err := pools.Adopt(sctx); err != nil {
			log.Warn("pools: some interfaces could not be checked", "err", err)
		}
		for _, sp := range specs {
			n, err := nc.FindNetwork(sctx, sp.network)
			if err != nil {
				stop()
				return fmt.Errorf("--pool %s: %w", sp.network, err)
			}
			key, err := pools.Add(pool.Spec{Network: n, Min: sp.min, Max: sp.max})
			if err != nil {
				stop()
				return err
			}
			log.Info("pool", "network", n.Name, "min", sp.min, "max", sp.max, "key", key)
		}
		wg.Add(1)
		go func() { defer wg.Done(); pools.Run(mctx) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			_ = cfg.Store.View(mctx, func(s *state.State) error {
				a.metrics.VLANsInUse.Set(float64(len(s.UsedVLANs())))
				return nil
			})
			select {
			case <-mctx.Done():
				return
			case <-t.C:
			}
		}
	}()

	maintained := make(chan struct{})
	go func() {
		defer close(maintained)
		p.Maintain(mctx, every)
	}()
	log.Info("ready", "plugin", name, "socket", l.Path(), "vif_id", cfg.VIFID, "bridge", cfg.Bridge, "state", cfg.Store.Dir(),
		"metrics", addr)
	err = dockerplugin.Serve(ctx, l, p.Handler(), a.s.timeout, log)
	stop()
	<-maintained
	wg.Wait()
	log.Info("stopped")
	return err
}

// lazyDocker connects to Docker when first needed and again after a failure: the daemon
// may start before dockerd, and dockerd may restart under it.
type lazyDocker struct {
	connect func(context.Context) (*docker.Client, error)

	mu sync.Mutex
	c  *docker.Client
}

func (d *lazyDocker) client(ctx context.Context) (*docker.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil {
		return d.c, nil
	}
	c, err := d.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	d.c = c
	return c, nil
}

func (d *lazyDocker) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil {
		d.c.Close()
		d.c = nil
	}
}

func (d *lazyDocker) Networks(ctx context.Context, driver string) ([]docker.Network, error) {
	c, err := d.client(ctx)
	if err != nil {
		return nil, err
	}
	return c.Networks(ctx, driver)
}

func (d *lazyDocker) Network(ctx context.Context, ref string) (docker.Network, error) {
	c, err := d.client(ctx)
	if err != nil {
		return docker.Network{}, err
	}
	return c.Network(ctx, ref)
}
