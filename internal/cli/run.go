package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/runargs"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Labels ovn-docker puts on the containers it makes.
const (
	LabelRole    = "org.ovn-docker.role"    // "sandbox" on the network sandbox
	LabelSandbox = "org.ovn-docker.sandbox" // on the user's container: its sandbox's ID
	LabelVM      = "org.ovn-docker.vm"      // the VM's port, on both
	LabelNets    = "org.ovn-docker.networks"
	LabelPID     = "org.ovn-docker.pid" // on the sandbox: the run that made it, until it is done
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

func (a *app) run(parent context.Context, opts *runargs.Options) (err error) {
	if len(a.s.networks) == 0 {
		return errors.New("run needs at least one --network NAME (before \"run\")")
	}
	if n := opts.Network; n != "" && n != "none" {
		return fmt.Errorf("docker's --net/--network %q: a container run by ovn-docker gets its networks from ovn-docker's --network (before \"run\"); use --net=none or leave it out", n)
	}
	if opts.Interactive || opts.TTY {
		return errors.New("-i/-t are not supported: run with -d, then docker exec/attach")
	}
	ctx, cancel := a.withTimeout(parent)
	defer cancel()

	t0 := time.Now()
	lap := func(what string) {
		a.log.Debug("run step", "step", what, "ms", time.Since(t0).Milliseconds())
		t0 = time.Now()
	}
	defer lap("done")
	// Everything that can be checked is checked before anything is made.
	dc, err := a.docker(ctx)
	if err != nil {
		return err
	}
	if err := dc.EnsureImage(ctx, opts.Config.Image, opts.Pull); err != nil {
		return err
	}
	lap("docker image")
	nc, err := a.neutron(ctx)
	if err != nil {
		return err
	}
	lap("authenticate")
	sgs, err := nc.SecurityGroupIDs(ctx, a.s.secGroups)
	if err != nil {
		return err
	}
	var nets []*neutron.Network
	cached := map[int]bool{}
	for i, name := range a.s.networks {
		n, hit, err := a.findNetwork(ctx, nc, name)
		if err != nil {
			return err
		}
		nets, cached[i] = append(nets, n), hit
	}
	lap("find networks")
	eng, err := a.engine(ctx)
	if err != nil {
		return err
	}
	if err := checkProjects(a.vifPort, nets); err != nil {
		return err
	}
	lap("engine")
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find ovn-docker's own executable for the sandbox image: %w", err)
	}
	pause, err := dc.EnsurePauseImage(ctx, exe)
	if err != nil {
		return err
	}

	// Neutron's part of each interface and the sandbox (the network namespace the
	// container will join) are independent: they are made at the same time.
	vif := eng.Config().VIFID
	type started struct {
		info docker.Info
		err  error
	}
	sbc := make(chan started, 1)
	go func() {
		info, err := dc.StartSandbox(ctx, docker.SandboxSpec{
			Name:  sandboxName(opts.Name),
			Image: pause,
			Labels: map[string]string{LabelRole: "sandbox", LabelVM: vif,
				LabelNets: strings.Join(a.s.networks, ","), LabelPID: strconv.Itoa(os.Getpid())},
			Hostname: opts.Hostname, Domainname: opts.Domainname,
			DNS: dnsFor(opts.DNS, nets), DNSSearch: opts.DNSSearch, DNSOptions: opts.DNSOptions,
			ExtraHosts: opts.ExtraHosts, Sysctls: opts.NetworkSysctls,
		})
		sbc <- started{info, err}
	}()
	var atts []*state.Attachment
	var app, sandbox string
	defer func() {
		if err == nil {
			return
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 2*time.Minute)
		defer cancel()
		if app != "" {
			if rerr := dc.Remove(uctx, app, true); rerr != nil {
				err = fmt.Errorf("%w (and removing container %s failed: %v)", err, short(app), rerr)
			}
		}
		for i := len(atts) - 1; i >= 0; i-- {
			if rerr := eng.Detach(uctx, atts[i].ID); rerr != nil {
				err = fmt.Errorf("%w (and releasing %s failed: %v; run ovn-docker gc)", err, atts[i].IfName, rerr)
			}
		}
		if sandbox != "" {
			if rerr := dc.Remove(uctx, sandbox, true); rerr != nil {
				err = fmt.Errorf("%w (and removing sandbox %s failed: %v)", err, short(sandbox), rerr)
			}
		}
	}()
	pending := fmt.Sprintf("run-%d-%s", os.Getpid(), randHex(4))
	// An interface ready in a pool (the daemon fills them) is taken as it is; the others
	// are made now, Neutron's part while the sandbox starts.
	warm := map[string]bool{}
	var prepErr error
	for i, n := range nets {
		req := engine.Request{Owner: pending, OwnerKind: state.OwnerSandbox, ContainerName: opts.Name, Network: n,
			IfName: fmt.Sprintf("eth%d", i), SecurityGroups: sgs}
		att, err := eng.Claim(ctx, pool.Key(n.ID, sgs), req)
		if err == nil && att == nil {
			att, err = eng.Prepare(ctx, req)
			if errors.Is(err, neutron.ErrNotFound) && cached[i] {
				// The network was deleted, or replaced, since the VM's processes found it.
				n, err = a.refindNetwork(ctx, nc, a.s.networks[i])
				if err == nil {
					nets[i], req.Network = n, n
					att, err = eng.Prepare(ctx, req)
				}
			}
		} else if err == nil {
			warm[att.ID] = true
			att.IfName = req.IfName
		}
		if err != nil {
			prepErr = fmt.Errorf("attach eth%d to network %s: %w", i, n.Name, err)
			break
		}
		atts = append(atts, att)
	}
	sb := <-sbc
	if sb.err == nil {
		sandbox = sb.info.ID
		a.step("sandbox")
	}
	if prepErr != nil {
		return prepErr
	}
	if sb.err != nil {
		return sb.err
	}
	a.step("prepared")
	lap("neutron ports and sandbox")
	netns := docker.NetNSPath(sb.info.Pid)
	for i, att := range atts {
		req := engine.Request{Owner: sandbox, OwnerKind: state.OwnerSandbox, IfName: att.IfName, NetNS: netns, DefaultRoute: i == 0}
		var err error
		if warm[att.ID] {
			_, err = eng.Take(ctx, att.ID, req)
		} else {
			_, err = eng.Plumb(ctx, att.ID, req)
		}
		if err != nil {
			return fmt.Errorf("attach %s to network %s: %w", att.IfName, att.NetworkName, err)
		}
	}
	a.step("plumbed")
	lap("attach")
	// The user's container, in the sandbox's namespace.
	cfg, hc := opts.Config, opts.HostConfig
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[LabelSandbox] = sandbox
	cfg.Labels[LabelVM] = vif
	cfg.Labels[LabelNets] = strings.Join(a.s.networks, ",")
	hc.NetworkMode = container.NetworkMode("container:" + sandbox)
	if !opts.Detach {
		// In the foreground ovn-docker itself removes the container after reading its exit
		// code, and releases its ports with it; Docker's auto-remove would race the read.
		hc.AutoRemove = false
	}
	id, warnings, err := dc.Create(ctx, opts.Name, cfg, hc)
	if err != nil {
		return err
	}
	app = id
	a.step("container-created")
	for _, w := range warnings {
		// Docker judges forwarding by its own networks; the container uses the sandbox's.
		if strings.Contains(w, "IPv4 forwarding is disabled") {
			continue
		}
		fmt.Fprintln(a.stderr, "WARNING:", w)
	}
	if err := dc.Start(ctx, id); err != nil {
		return err
	}
	a.step("container-started")
	lap("container")
	name := opts.Name
	if info, err := dc.Inspect(ctx, id); err == nil {
		name = info.Name
	}
	for _, att := range atts {
		if err := eng.Label(ctx, att.ID, id, name); err != nil {
			a.log.Warn("could not tag the Neutron port with the container", "port", att.PortID, "err", err)
		}
	}
	if opts.Detach {
		fmt.Fprintln(a.stdout, id)
		return nil
	}
	return a.foreground(parent, dc, eng, id, opts.Remove)
}

// refindNetwork asks Neutron again for a network that was found in the VM's cache.
func (a *app) refindNetwork(ctx context.Context, nc *neutron.Client, name string) (*neutron.Network, error) {
	a.keepNetwork(name, nil)
	n, _, err := a.findNetwork(ctx, nc, name)
	if err != nil {
		return nil, err
	}
	if err := checkProjects(a.vifPort, []*neutron.Network{n}); err != nil {
		return nil, err
	}
	return n, nil
}

// foreground streams the container's output until it exits and returns its exit code;
// with --rm it then releases the ports and removes both containers.
func (a *app) foreground(ctx context.Context, dc *docker.Client, eng *engine.Engine, id string, remove bool) error {
	streamErr := make(chan error, 1)
	go func() { streamErr <- dc.Stream(ctx, id, a.stdout, a.stderr) }()
	code, err := dc.Wait(ctx, id)
	if err != nil {
		return err
	}
	select {
	case <-streamErr:
	case <-time.After(2 * time.Second):
	}
	if remove {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := a.removeContainer(rctx, dc, eng, id, true); err != nil {
			return err
		}
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// checkProjects refuses a network of another project than the VM's port, unless it is
// shared. Credentials that see every project (admin's) would otherwise put a container
// of this VM, and so the VM's root, on another tenant's network.
func checkProjects(vm *neutron.Port, nets []*neutron.Network) error {
	if vm == nil || vm.ProjectID == "" {
		return nil
	}
	for _, n := range nets {
		if n.Shared || n.ProjectID == "" || n.ProjectID == vm.ProjectID {
			continue
		}
		return fmt.Errorf("network %s belongs to project %s, the VM's port %s to project %s: "+
			"a container joins only networks of its VM's project, or shared ones", n.Name, n.ProjectID, vm.ID, vm.ProjectID)
	}
	return nil
}

// dnsFor returns the DNS servers to give the sandbox: the user's, or else those of the
// first network's subnets.
func dnsFor(user []string, nets []*neutron.Network) []string {
	if len(user) > 0 || len(nets) == 0 {
		return user
	}
	var out []string
	for _, s := range nets[0].Subnets {
		out = append(out, s.DNS...)
	}
	return out
}

func sandboxName(name string) string {
	if name != "" {
		return name + "-ovn-sandbox"
	}
	return "ovn-sandbox-" + randHex(5)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
