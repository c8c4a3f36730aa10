package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/bench"
	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/metrics"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

func newBenchCmd(a *app) *cobra.Command {
	var samples, conc string
	var total, totalConc, batch int
	var do dockerBenchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure attach latency in this VM: local floor, cold path, warm pool; with --docker, docker run through the agent",
		Long: `Measure, inside this VM and against the real cloud, the latency of attaching an
interface to a network namespace three ways, at each concurrency level:
  floor  a veth pair, an OVS access port, the move into the namespace and the address
         configuration: the local work alone, no Neutron
  cold   the whole attach: VLAN, Neutron port, trunk subport, veth, access port, probe
  warm   from a pool filled beforehand (bulk Neutron calls), so no Neutron call
then the throughput of --total attaches at --total-concurrency, cold and warm. It prints
p50/p95/p99, attaches per second, errors and Neutron calls per attach, and the ratios
warm/floor and cold/warm. With no --network it makes a scratch network (a free /22)
and deletes it afterwards; everything it attaches is released.

With --docker it measures instead what a user of this VM's agent measures (the agent
must run: ovn-docker daemon). It makes a Docker network of the agent's plugin with
-o pool.min=--pool-min on a scratch Neutron network (or --network), and a macvlan
network on --uplink (Docker's own floor for a network, on a subnet that overlaps
nothing), then times, in --pairs rounds (the order reversed every other round, each
run started once the agent is idle):
  docker run --rm --network <ovn, warm> IMAGE true   (through the API, as the CLI does it)
  docker run --rm --network <macvlan> IMAGE true
  docker run --rm --net=none IMAGE true
  ovn-docker --network LS run --rm IMAGE true        (this binary, through the agent)
and prints each one's median and p95, and the median of its per-round ratios to the
macvlan and none runs. Then the plugin's cold path: a network of the plugin with no
pool, each run paired with a macvlan run, against the time Neutron spent answering the
run's requests (from the agent's metrics, <state-dir>/metrics.sock): the median of
cold - Neutron - macvlan. Everything it makes is removed afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if do.docker {
				return a.dockerBench(cmd.Context(), do)
			}
			ns, err := intList(samples)
			if err != nil {
				return fmt.Errorf("--samples: %w", err)
			}
			cs, err := intList(conc)
			if err != nil {
				return fmt.Errorf("--concurrency: %w", err)
			}
			if len(ns) != len(cs) {
				return fmt.Errorf("--samples needs one count per --concurrency level (%d levels)", len(cs))
			}
			counter := &bench.Counter{}
			a.transport = func(next http.RoundTripper) http.RoundTripper {
				return countingTransport{next: next, c: counter}
			}
			ctx := cmd.Context()
			nc, err := a.service().Neutron(ctx)
			if err != nil {
				return err
			}
			var network *neutron.Network
			if len(a.s.networks) > 0 {
				if network, err = nc.FindNetwork(ctx, a.s.networks[0]); err != nil {
					return err
				}
			} else {
				name := fmt.Sprintf("ovn-docker-bench-%d", time.Now().Unix())
				n, note, err := nc.CreateNetwork(ctx, neutron.CreateNetworkOpts{Name: name, PrefixLen: 22})
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "scratch network %s: %s\n", name, note)
				defer func() {
					if err := nc.DeleteNetwork(ctx, n.ID); err != nil {
						a.log.Warn("could not delete the scratch network", "network", n.ID, "err", err)
					}
				}()
				network = n
			}
			eng, err := a.service().Engine(ctx)
			if err != nil {
				return err
			}
			sw, err := a.service().OVS(ctx)
			if err != nil {
				return err
			}
			_, err = bench.Run(ctx, bench.Deps{Engine: eng, Switch: sw, Counter: counter, Log: a.log},
				bench.Options{Network: network, Samples: ns, Concurrency: cs, Total: total, TotalConc: totalConc, Batch: batch},
				a.stdout)
			return err
		},
	}
	cmd.Flags().StringVar(&samples, "samples", "20,30,50", "attaches measured per concurrency level")
	cmd.Flags().StringVar(&conc, "concurrency", "1,10,50", "concurrency levels")
	cmd.Flags().IntVar(&total, "total", 200, "attaches of the throughput run (0: none)")
	cmd.Flags().IntVar(&totalConc, "total-concurrency", 50, "concurrency of the throughput run")
	cmd.Flags().IntVar(&batch, "batch", 25, "ports per bulk Neutron call when filling pools")
	cmd.Flags().BoolVar(&do.docker, "docker", false, "measure docker run and ovn-docker run through this VM's agent instead (see above)")
	cmd.Flags().IntVar(&do.pairs, "pairs", 20, "--docker: rounds of runs compared run by run")
	cmd.Flags().IntVar(&do.poolMin, "pool-min", 4, "--docker: the warm network's -o pool.min")
	cmd.Flags().StringVar(&do.image, "image", "busybox:local", "--docker: the image to run (its command: true)")
	cmd.Flags().StringVar(&do.plugin, "plugin-name", envOr(a.getenv, "OVN_DOCKER_PLUGIN_NAME", DefaultPluginName), "--docker: the agent's plugin (docker network create -d)")
	cmd.Flags().StringVar(&do.metrics, "metrics-socket", "", "--docker: the agent's metrics socket (default <state-dir>/metrics.sock)")
	cmd.Flags().DurationVar(&do.settle, "settle", 300*time.Millisecond, "--docker: how long the agent must have been idle before each run")
	cmd.Flags().BoolVar(&do.cold, "cold", true, "--docker: also measure the plugin's cold path")
	cmd.Flags().StringVar(&do.dockerCLI, "docker-cli", "", "--docker: time the docker paths through this docker CLI binary, one process per run as a user runs it (default: their API calls, in-process)")
	return cmd
}

// dockerBenchFlags are the flags of bench --docker.
type dockerBenchFlags struct {
	docker, cold   bool
	pairs, poolMin int
	image, plugin  string
	metrics        string
	dockerCLI      string
	settle         time.Duration
}

// dockerBench runs bench --docker: through the agent, which must run.
func (a *app) dockerBench(ctx context.Context, do dockerBenchFlags) error {
	agent, err := api.Dial(ctx, a.s.stateDir)
	if errors.Is(err, api.ErrNoAgent) {
		return fmt.Errorf("bench --docker measures through this VM's agent, and none answers on %s: start it first (ovn-docker daemon)",
			filepath.Join(a.s.stateDir, api.SocketName))
	}
	if err != nil {
		return err
	}
	dc, err := docker.New(ctx, "")
	if err != nil {
		return err
	}
	defer dc.Close()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find ovn-docker's own executable: %w", err)
	}
	sock := do.metrics
	if sock == "" {
		sock = filepath.Join(a.s.stateDir, "metrics.sock")
	}
	var network string
	if len(a.s.networks) > 0 {
		network = a.s.networks[0]
	}
	_, err = bench.RunDocker(ctx, bench.DockerDeps{Docker: dc, Agent: agent, Log: a.log,
		Metrics: func(ctx context.Context) (metrics.Samples, error) { return metrics.Scrape(ctx, sock) }},
		bench.DockerOptions{Pairs: do.pairs, PoolMin: do.poolMin, Image: do.image, Network: network, Uplink: a.s.uplink,
			Plugin: do.plugin, Exe: exe, DockerCLI: do.dockerCLI, GlobalArgs: []string{"--state-dir", a.s.stateDir}, Settle: do.settle, SkipCold: !do.cold},
		a.stdout)
	return err
}

// countingTransport counts and times the requests that reach Neutron.
type countingTransport struct {
	next http.RoundTripper
	c    *bench.Counter
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t0 := time.Now()
	resp, err := t.next.RoundTrip(r)
	if strings.Contains(r.URL.Path, "/v2.0/") {
		t.c.Requests.Add(1)
		t.c.Nanos.Add(int64(time.Since(t0)))
	}
	return resp, err
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a list of positive numbers", s)
		}
		out = append(out, n)
	}
	return out, nil
}
