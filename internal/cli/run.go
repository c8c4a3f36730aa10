package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/runargs"
)

const runLong = `Run a container on Neutron networks: everything after "run" is docker run's own
arguments (see the supported ones below). ovn-docker first starts a small network
sandbox container, attaches one interface per --network to it (eth0, eth1, ...: a
Neutron port, a trunk subport with a VLAN unique in this VM, a veth whose VM end is an
access port on the VM's OVS bridge), waits until OVN has bound the ports, and only
then creates and starts the container in the sandbox's network namespace. So the
container's very first instruction already has its network. The container's --net must
be none or absent: its networks are the --network flags before "run".

Hostname, --dns, --add-host and net.* sysctls go to the sandbox, whose network namespace
(and so /etc/hosts, /etc/resolv.conf) the container shares. Remove the container with
"ovn-docker rm", which releases its ports.
`

func newRunCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "run [docker run options] IMAGE [COMMAND [ARG...]]",
		Short:   "Run a container with interfaces on Neutron networks (docker run arguments)",
		Long:    runLong + "\n" + runargs.Usage(),
		Example: "  ovn-docker --cred=$TOKEN --vif-id=$VIF_ID --network=LS1 run -d --net=none busybox sleep 1d\n  ovn-docker --network LS1 --network LS2 run -d --name web busybox httpd -f",
		// splitRun put "--" after "run": cobra hands over Docker's arguments untouched.
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := runargs.Parse(args)
			if errors.Is(err, runargs.ErrHelp) {
				return cmd.Help()
			}
			if err != nil {
				return err
			}
			return a.run(cmd.Context(), opts)
		},
	}
	return cmd
}

func (a *app) run(parent context.Context, opts *runargs.Options) error {
	if err := a.checkTTY(opts); err != nil {
		return err
	}
	a.consoleSize(opts)
	ctx, cancel := a.withTimeout(parent)
	defer cancel()
	if err := a.pullFirst(ctx, opts); err != nil {
		return err
	}
	b, err := a.backend(ctx)
	if err != nil {
		return err
	}
	res, err := b.Run(ctx, api.RunRequest{Networks: a.s.networks, SecurityGroups: a.s.secGroups, Options: opts, PortOptions: a.s.port})
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(a.stderr, "WARNING:", w)
	}
	if opts.Detach {
		fmt.Fprintln(a.stdout, res.ID)
		return nil
	}
	return a.foreground(parent, b, res, opts)
}

// foreground starts the container made for it with its output attached and its end
// awaited, as docker run does, and returns its exit code; with --rm it then releases
// the ports and removes the container, or, when Docker removes it (on the agent's
// Docker networks), waits for that.
func (a *app) foreground(ctx context.Context, b api.Backend, res *api.RunResult, opts *runargs.Options) error {
	remove := opts.Remove
	dc, err := docker.New(ctx, "")
	if err != nil {
		return err
	}
	defer dc.Close()
	st, restore, err := a.streams(opts)
	if err != nil {
		return err
	}
	code, err := dc.Foreground(ctx, res.ID, res.AutoRemove, st)
	restore()
	if err != nil || remove && !res.AutoRemove {
		// Ours to remove: after its end with --rm, or after a start that failed (nothing
		// is left of a run that failed).
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		rerr := b.Remove(rctx, api.RemoveRequest{Container: res.ID, Force: true})
		if err != nil {
			if rerr != nil && api.KindOf(rerr) != api.KindNotFound {
				return fmt.Errorf("%w (and removing it failed: %v)", err, rerr)
			}
			return err
		}
		if rerr != nil {
			return rerr
		}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}
