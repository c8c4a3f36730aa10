package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

func newGCCmd(a *app) *cobra.Command {
	var grace time.Duration
	var drain bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Finish what interrupted runs left, and delete what no container owns",
		Long: `Release what interrupted ovn-docker runs left half made or half released, then look
for orphans: interfaces whose container is gone, Neutron ports made for this VM, access
ports on its bridge and veths in it that nothing records, network sandboxes without
their container. It looks twice, --grace apart, and deletes only what was orphaned both
times, so that runs in progress are left alone. A pool's ready interfaces belong to the
daemon and are kept, unless --drain-pools releases them (stop the daemon first, or it
fills its pools again).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			eng, err := a.engine(ctx)
			if err != nil {
				return err
			}
			if drain {
				n, err := drainPools(ctx, eng)
				fmt.Fprintf(a.stdout, "released %d ready pool interface(s)\n", n)
				if err != nil {
					return err
				}
			}
			var owners engine.Owners
			dc, derr := a.docker(ctx)
			if derr == nil {
				owners = &sandboxOwners{dc: dc, vif: eng.Config().VIFID}
			} else {
				a.log.Warn("docker is not reachable: containers cannot be checked, their interfaces are kept", "err", derr)
			}
			// Two passes: the first marks, the second deletes what is still orphaned.
			first, _ := eng.GC(ctx, owners, grace)
			var sandboxes map[string]bool
			if dc != nil {
				sandboxes, _ = orphanSandboxes(ctx, dc, eng)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(grace):
			}
			if o, ok := owners.(*sandboxOwners); ok {
				o.reset()
			}
			second, err := eng.GC(ctx, owners, grace)
			removed := 0
			if dc != nil {
				still, _ := orphanSandboxes(ctx, dc, eng)
				owned := map[string]bool{}
				_ = eng.Config().Store.View(ctx, func(st *state.State) error {
					for _, at := range st.Attachments {
						owned[at.Owner] = true
					}
					return nil
				})
				for id := range still {
					if sandboxes[id] && !owned[id] {
						if rerr := dc.Remove(ctx, id, true); rerr == nil {
							removed++
						}
					}
				}
			}
			second.Interrupted += first.Interrupted
			second.OwnerGone += first.OwnerGone
			fmt.Fprintf(a.stdout, "%s; removed %d orphaned sandbox(es)\n", second, removed)
			return err
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", 3*time.Second, "how long something must stay orphaned before it is deleted")
	cmd.Flags().BoolVar(&drain, "drain-pools", false, "also release the pools' ready interfaces")
	return cmd
}

// sandboxOwners says whether the sandbox owning an attachment still serves a container.
type sandboxOwners struct {
	dc   *docker.Client
	vif  string
	used map[string]bool // sandboxes some container runs in
}

func (o *sandboxOwners) reset() { o.used = nil }

func (o *sandboxOwners) Alive(ctx context.Context, a *state.Attachment) (bool, bool) {
	if a.OwnerKind != state.OwnerSandbox && a.OwnerKind != "" {
		return false, false // a Docker endpoint: the daemon's to judge
	}
	if o.used == nil {
		users, err := o.dc.List(ctx, LabelSandbox)
		if err != nil {
			return false, false
		}
		o.used = map[string]bool{}
		for _, u := range users {
			o.used[u.Labels[LabelSandbox]] = true
		}
	}
	if o.used[a.Owner] {
		return true, true
	}
	_, err := o.dc.Inspect(ctx, a.Owner)
	if err != nil && !isNotFound(err) {
		return false, false
	}
	// The sandbox is gone, or no container runs in it any more: its interfaces serve nobody.
	return false, true
}

func isNotFound(err error) bool { return errors.Is(err, docker.ErrNotFound) }

// orphanSandboxes lists this VM's sandboxes that no container runs in and whose
// creating run is over.
func orphanSandboxes(ctx context.Context, dc *docker.Client, eng *engine.Engine) (map[string]bool, error) {
	sbs, err := dc.List(ctx, LabelRole+"=sandbox")
	if err != nil {
		return nil, err
	}
	users, err := dc.List(ctx, LabelSandbox)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, u := range users {
		used[u.Labels[LabelSandbox]] = true
	}
	out := map[string]bool{}
	for _, sb := range sbs {
		if sb.Labels[LabelVM] != eng.Config().VIFID || used[sb.ID] {
			continue
		}
		if pid, err := strconv.Atoi(sb.Labels[LabelPID]); err == nil && pid != os.Getpid() && unix.Kill(pid, 0) == nil {
			continue // the run that made it is still working
		}
		out[sb.ID] = true
	}
	return out, nil
}

// drainPools releases the ready interfaces of the VM's pools.
func drainPools(ctx context.Context, eng *engine.Engine) (int, error) {
	var ids []string
	err := eng.Config().Store.View(ctx, func(st *state.State) error {
		for _, at := range st.Attachments {
			if at.OwnerKind == state.OwnerPool && at.PID == 0 {
				ids = append(ids, at.ID)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, id := range ids {
		if err := eng.Detach(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
