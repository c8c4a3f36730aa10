package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newGCCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Finish or undo what interrupted runs left behind",
		Long: `Release the container interfaces that an interrupted ovn-docker run left half made
or half released (its process is gone): access port, veth, subport, Neutron port, VLAN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			eng, err := a.engine(ctx)
			if err != nil {
				return err
			}
			n, err := eng.Recover(ctx)
			fmt.Fprintf(a.stdout, "released %d interrupted attachment(s)\n", n)
			return err
		},
	}
}
