package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/api"
)

func newGCCmd(a *app) *cobra.Command {
	var req api.GCRequest
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
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			b, err := a.backend(ctx)
			if err != nil {
				return err
			}
			res, err := b.GC(ctx, req)
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
	return cmd
}
