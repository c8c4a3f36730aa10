package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/api"
)

func newRmCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [-f] CONTAINER [CONTAINER...]",
		Short: "Release a container's Neutron ports, then remove it",
		Long: `Release every interface of the container (OVS access port, veth, trunk subport,
Neutron port, VLAN), then remove the container and its network sandbox. A running
container needs -f, as with docker rm.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New(`"ovn-docker rm" needs at least one container`)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			b, err := a.backend(ctx)
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				if err := b.Remove(ctx, api.RemoveRequest{Container: ref, Force: force}); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(a.stdout, ref)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove a running container (it loses its network first)")
	return cmd
}
