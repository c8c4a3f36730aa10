package cli

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/dockerplugin"
)

// Defaults of the daemon.
const (
	DefaultPluginDir  = "/run/docker/plugins"
	DefaultPluginName = "ovn"
)

const daemonLong = `Serve Docker's network driver and IPAM driver (one plugin) on the unix socket
<plugin-dir>/<plugin-name>.sock, readable only by root, where dockerd finds it. Then plain
docker commands put containers on Neutron networks:

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
SIGINT stop it gracefully.`

func newDaemonCmd(a *app) *cobra.Command {
	var dir, name string
	var every, grace time.Duration
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Serve Docker's network and IPAM plugin (docker network create -d ovn --ipam-driver ovn)",
		Long:  daemonLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("log-level") && a.getenv("OVN_DOCKER_LOG_LEVEL") == "" {
				// A daemon's log is its only account of what it did.
				log, err := newLogger(a.stderr, "info", a.redactor)
				if err != nil {
					return err
				}
				a.log = log
			}
			if every <= 0 || grace <= 0 {
				return errors.New("--reconcile-every and --reconcile-grace must be positive")
			}
			return a.daemon(cmd.Context(), dir, name, every, grace)
		},
	}
	env := a.getenv
	cmd.Flags().StringVar(&dir, "plugin-dir", envOr(env, "OVN_DOCKER_PLUGIN_DIR", DefaultPluginDir), "folder where dockerd looks for plugin sockets")
	cmd.Flags().StringVar(&name, "plugin-name", envOr(env, "OVN_DOCKER_PLUGIN_NAME", DefaultPluginName), "the plugin's name: docker's -d and --ipam-driver")
	cmd.Flags().DurationVar(&every, "reconcile-every", 2*time.Minute, "how often to release what Docker forgot")
	cmd.Flags().DurationVar(&grace, "reconcile-grace", 2*time.Minute, "how long an address or pool Docker does not know is kept (Docker may be creating its endpoint)")
	return cmd
}

func (a *app) daemon(ctx context.Context, dir, name string, every, grace time.Duration) error {
	log := a.log.With("component", "daemon")
	sctx, cancel := a.withTimeout(ctx)
	defer cancel()
	st, err := a.store()
	if err != nil {
		return err
	}
	unlock, err := dockerplugin.LockDaemon(st.Dir())
	if err != nil {
		return err
	}
	defer unlock()
	eng, err := a.engine(sctx)
	if err != nil {
		return err
	}
	if a.session != nil && a.session.Method == "token" {
		log.Warn("the daemon holds a token it cannot renew: it stops working when the token expires; give it a password or an application credential")
	}
	nc, _ := a.neutron(sctx)
	sw, _ := a.ovs(sctx)
	dc := &lazyDocker{connect: func(ctx context.Context) (*docker.Client, error) { return docker.New(ctx, "") }}
	defer dc.close()
	if _, err := dc.client(sctx); err != nil {
		log.Warn("Docker does not answer yet: the daemon reconciles once it does", "err", err)
	}
	cfg := eng.Config()
	p, err := dockerplugin.New(dockerplugin.Config{
		Name: name, Engine: eng, Store: cfg.Store, Neutron: dockerplugin.NeutronAPI{Client: nc}, Docker: dc,
		Host: dockerplugin.VMHost{Switch: sw, Bridge: cfg.Bridge}, Log: a.log, Timeout: a.s.timeout, Grace: grace,
	})
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Start(sctx); err != nil {
		log.Warn("start: not everything was reconciled; the next pass tries again", "err", err)
	}
	l, err := dockerplugin.Listen(dir, name)
	if err != nil {
		return err
	}
	mctx, stop := context.WithCancel(ctx)
	maintained := make(chan struct{})
	go func() {
		defer close(maintained)
		p.Maintain(mctx, every)
	}()
	log.Info("ready", "plugin", name, "socket", l.Path(), "vif_id", cfg.VIFID, "bridge", cfg.Bridge, "state", cfg.Store.Dir())
	err = dockerplugin.Serve(ctx, l, p.Handler(), a.s.timeout, log)
	stop()
	<-maintained
	log.Info("stopped")
	return err
}

// lazyDocker connects to Docker when first needed and again after a failure: the daemon
// may start before dockerd, and dockerd may restart under it.
type lazyDocker struct {
	connect func(context.Context) (*docker.Client, error)

	mu sync.Mutex
	c  *docker.Client
}

func (d *lazyDocker) client(ctx context.Context) (*docker.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil {
		return d.c, nil
	}
	c, err := d.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	d.c = c
	return c, nil
}

func (d *lazyDocker) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil {
		d.c.Close()
		d.c = nil
	}
}

func (d *lazyDocker) Networks(ctx context.Context, driver string) ([]docker.Network, error) {
	c, err := d.client(ctx)
	if err != nil {
		return nil, err
	}
	return c.Networks(ctx, driver)
}

func (d *lazyDocker) Network(ctx context.Context, ref string) (docker.Network, error) {
	c, err := d.client(ctx)
	if err != nil {
		return docker.Network{}, err
	}
	return c.Network(ctx, ref)
}
