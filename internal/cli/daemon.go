package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/agent"
)

// Defaults of the daemon.
const (
	DefaultPluginDir  = "/run/docker/plugins"
	DefaultPluginName = "ovn"
)

const daemonLong = `Run this VM's agent: it serves the other ovn-docker commands on
<state-dir>/agent.sock, and Docker's network driver and IPAM driver (one plugin) on
<plugin-dir>/<plugin-name>.sock, both readable only by root. The CLI then asks the agent,
which acts with its own credentials, and plain docker commands put containers on
Neutron networks:

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

It also follows the containers of "ovn-docker run" through Docker's events: one that is
removed (docker rm, --rm) has its ports released at once; a sandbox that Docker starts
again (dockerd restarted, the VM rebooted) gets its interfaces back in its new namespace,
with the same ports, MACs and addresses.

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
		Short: "Run the VM's agent: the local API, Docker's network and IPAM plugin, the pools",
		Long:  daemonLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("log-level") && a.getenv("OVN_DOCKER_LOG_LEVEL") == "" {
				// A daemon's log is its only account of what it did.
				log, err := newLogger(a.stderr, "info", a.s.logFormat, a.redactor)
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
	cmd.Flags().StringVar(&dir, "plugin-dir", envOr(env, "OVN_DOCKER_PLUGIN_DIR", DefaultPluginDir), "folder where dockerd looks for plugin sockets (OVN_DOCKER_PLUGIN_DIR)")
	cmd.Flags().StringVar(&name, "plugin-name", envOr(env, "OVN_DOCKER_PLUGIN_NAME", DefaultPluginName), "the plugin's name: docker's -d and --ipam-driver (OVN_DOCKER_PLUGIN_NAME)")
	cmd.Flags().DurationVar(&every, "reconcile-every", 2*time.Minute, "how often to release what Docker forgot")
	cmd.Flags().DurationVar(&grace, "reconcile-grace", 2*time.Minute, "how long an address or pool Docker does not know is kept (Docker may be creating its endpoint)")
	cmd.Flags().StringArrayVar(&dp.specs, "pool", strings.Fields(strings.ReplaceAll(env("OVN_DOCKER_POOLS"), ",", " ")),
		"keep interfaces ready on a network: NETWORK[:MIN[:MAX]] (default 10:2*MIN); repeatable (OVN_DOCKER_POOLS, space-separated)")
	cmd.Flags().IntVar(&dp.batch, "pool-batch", 10, "ports per bulk Neutron call when filling pools")
	cmd.Flags().IntVar(&dp.calls, "pool-neutron-calls", 2, "pool batches in flight at once")
	cmd.Flags().DurationVar(&dp.refill, "pool-refill", 2*time.Second, "how often pools are checked")
	cmd.Flags().BoolVar(&dp.reuse, "pool-reuse", false, "return a pool's interfaces to it, scrubbed, when their container goes (default: delete them)")
	cmd.Flags().StringVar(&dp.metricsListen, "metrics", envOr(env, "OVN_DOCKER_METRICS", ""), "serve Prometheus metrics on unix:/path, or 127.0.0.1:PORT with TLS (default: <state-dir>/metrics.sock; OVN_DOCKER_METRICS)")
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
	cfg := agent.Config{
		Service: a.serviceConfig(), Version: Version, Timeout: a.s.timeout,
		PluginDir: dir, PluginName: name, ReconcileEvery: every, ReconcileGrace: grace,
		PoolBatch: dp.batch, PoolCalls: dp.calls, PoolRefill: dp.refill, PoolReuse: dp.reuse,
		MetricsAddr: dp.metricsListen, MetricsCert: dp.metricsCert, MetricsKey: dp.metricsKey,
		NotifySocket: a.getenv("NOTIFY_SOCKET"),
	}
	if us, err := strconv.ParseInt(a.getenv("WATCHDOG_USEC"), 10, 64); err == nil && us > 0 {
		cfg.Watchdog = time.Duration(us) * time.Microsecond
	}
	for _, sp := range dp.specs {
		n, min, max, err := parsePool(sp)
		if err != nil {
			return err
		}
		cfg.Pools = append(cfg.Pools, agent.PoolSpec{Network: n, Min: min, Max: max})
	}
	return agent.Run(ctx, cfg)
}
