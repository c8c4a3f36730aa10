package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/api"
)

func newGCCmd(a *app) *cobra.Command {
	var req api.GCRequest
	var out output
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Finish what interrupted runs left, and delete what no container owns",
		Long: `Release what interrupted ovn-docker runs left half made or half released, then look
for orphans: interfaces whose container is gone, Neutron ports made for this VM, access
ports on its bridge and veths in it that nothing records, network sandboxes without
their container. It looks twice, --grace apart, and deletes only what was orphaned both
times, so that runs in progress are left alone. A pool's ready interfaces belong to the
agent and are kept, unless --drain-pools releases them (stop the agent first, or it
fills its pools again).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(out, gcColumns); err != nil {
				return err
			}
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			b, err := a.backend(ctx)
			if err != nil {
				return err
			}
			res, err := b.GC(ctx, req)
			if res != nil && (cmd.Flags().Changed("format") || cmd.Flags().Changed("column")) {
				if werr := writeOne(a.stdout, out, gcColumns, *res); werr != nil {
					return werr
				}
				return err
			}
			if res != nil {
				if req.DrainPools {
					fmt.Fprintf(a.stdout, "released %d ready pool interface(s)\n", res.Drained)
				}
				fmt.Fprintf(a.stdout, "%s; removed %d orphaned sandbox(es)\n", res.Summary, res.Sandboxes)
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&req.Grace, "grace", 3*time.Second, "how long something must stay orphaned before it is deleted")
	cmd.Flags().BoolVar(&req.DrainPools, "drain-pools", false, "also release the pools' ready interfaces")
	addOutputFlags(cmd, &out)
	cmd.Flags().Lookup("format").Usage += " (default: a sentence)"
	return cmd
}

// gcColumns are what gc did, for -f and -c.
var gcColumns = []column[api.GCResult]{
	{head: "INTERRUPTED", key: "interrupted", cell: func(r api.GCResult) string { return strconv.Itoa(r.Interrupted) }},
	{head: "OWNER_GONE", key: "owner_gone", cell: func(r api.GCResult) string { return strconv.Itoa(r.OwnerGone) }},
	{head: "PORTS", key: "ports", cell: func(r api.GCResult) string { return strconv.Itoa(r.Ports) }},
	{head: "OVS_PORTS", key: "ovs_ports", cell: func(r api.GCResult) string { return strconv.Itoa(r.OVSPorts) }},
	{head: "VETHS", key: "veths", cell: func(r api.GCResult) string { return strconv.Itoa(r.Veths) }},
	{head: "MARKED", key: "marked", cell: func(r api.GCResult) string { return strconv.Itoa(r.Marked) }},
	{head: "SANDBOXES", key: "sandboxes", cell: func(r api.GCResult) string { return strconv.Itoa(r.Sandboxes) }},
	{head: "DRAINED", key: "drained", cell: func(r api.GCResult) string { return strconv.Itoa(r.Drained) }},
	{head: "ERRORS", key: "errors", cell: func(r api.GCResult) string { return strings.Join(r.Errors, "; ") }, extra: true},
}
