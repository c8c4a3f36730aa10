package cli

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/bench"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

func newBenchCmd(a *app) *cobra.Command {
	var samples, conc string
	var total, totalConc, batch int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure attach latency in this VM: local floor, cold path, warm pool",
		Long: `Measure, inside this VM and against the real cloud, the latency of attaching an
interface to a network namespace three ways, at each concurrency level:
  floor  a veth pair, an OVS access port, the move into the namespace and the address
         configuration: the local work alone, no Neutron
  cold   the whole attach: VLAN, Neutron port, trunk subport, veth, access port, probe
  warm   from a pool filled beforehand (bulk Neutron calls), so no Neutron call
then the throughput of --total attaches at --total-concurrency, cold and warm. It prints
p50/p95/p99, attaches per second, errors and Neutron calls per attach, and the ratios
warm/floor and cold/warm. With no --network it makes a scratch network (a free /22)
and deletes it afterwards; everything it attaches is released.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	return cmd
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
