package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
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
			dc, err := a.docker(ctx)
			if err != nil {
				return err
			}
			eng, err := a.engine(ctx)
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				if err := a.removeContainer(ctx, dc, eng, ref, force); err != nil {
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

// removeContainer releases a container's attachments and removes it and its sandbox.
// Given a sandbox whose container is already gone, it releases and removes the sandbox.
func (a *app) removeContainer(ctx context.Context, dc *docker.Client, eng *engine.Engine, ref string, force bool) error {
	info, err := dc.Inspect(ctx, ref)
	if errors.Is(err, docker.ErrNotFound) {
		return fmt.Errorf("no such container: %s", ref)
	}
	if err != nil {
		return err
	}
	app, sandbox := info, info.Labels[LabelSandbox]
	if info.Labels[LabelRole] == "sandbox" {
		sandbox = info.ID
		users, err := dc.List(ctx, LabelSandbox+"="+info.ID)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return fmt.Errorf("%s is the network sandbox of container %s: remove that one", ref, trimName(users[0].Name))
		}
		app = docker.Info{}
	}
	if app.ID != "" && app.Running && !force {
		return fmt.Errorf("container %s is running: stop it first or use rm -f", ref)
	}
	if sandbox != "" {
		var ids []string
		err := eng.Config().Store.View(ctx, func(st *state.State) error {
			for _, att := range st.ByOwner(sandbox) {
				ids = append(ids, att.ID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := pool.Release(ctx, eng, id); err != nil {
				return fmt.Errorf("release the ports of %s: %w", ref, err)
			}
		}
	}
	a.step("rm-released")
	if app.ID != "" {
		if err := dc.Remove(ctx, app.ID, true); err != nil {
			return err
		}
		a.step("rm-container-removed")
	}
	if sandbox != "" {
		if err := dc.Remove(ctx, sandbox, true); err != nil {
			return err
		}
	}
	return nil
}

func trimName(n string) string {
	if len(n) > 0 && n[0] == '/' {
		return n[1:]
	}
	return n
}
