package service

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

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Labels ovn-docker puts on the containers it makes.
const (
	LabelRole    = "org.ovn-docker.role"    // "sandbox" on the network sandbox
	LabelSandbox = "org.ovn-docker.sandbox" // on the user's container: its sandbox's ID
	LabelVM      = "org.ovn-docker.vm"      // the VM's port, on both
	LabelNets    = "org.ovn-docker.networks"
	LabelPID     = "org.ovn-docker.pid" // on the sandbox: the process of the run that made it
	LabelRun     = "org.ovn-docker.run" // on the sandbox: that run, which may be in the agent
)

// checkRun refuses what run cannot do, before anything is made.
func checkRun(r api.RunRequest) error {
	if len(r.Networks) == 0 {
		return api.Invalid(errors.New("run needs at least one --network NAME (before \"run\")"))
	}
	opts := r.Options
	if opts == nil || opts.Config == nil || opts.HostConfig == nil || opts.Config.Image == "" {
		return api.Invalid(errors.New("run needs an image"))
	}
	if n := opts.Network; n != "" && n != "none" {
		return api.Invalid(fmt.Errorf("docker's --net/--network %q: a container run by ovn-docker gets its networks from ovn-docker's --network (before \"run\"); use --net=none or leave it out", n))
	}
	if _, err := fixedIPs(opts); err != nil {
		return api.Invalid(err)
	}
	return nil
}

// Run starts a container with an interface on each network, each ready before the
// container is created. In the agent, which serves Docker's plugin, the container goes
// on the plugin's Docker networks (see runOnDockerNetworks). Otherwise a small sandbox
// container (ovn-docker's pause process, no network) holds the network namespace; each
// network is attached to it, and the user's container then joins that namespace. On
// failure everything made is undone.
func (s *Service) Run(ctx context.Context, r api.RunRequest) (res *api.RunResult, err error) {
	if err := checkRun(r); err != nil {
		return nil, err
	}
	// The VM's own part first: a missing bridge is said now, not after a Neutron port
	// was made and rolled back.
	if err := s.Preflight(ctx); err != nil {
		return nil, err
	}
	opts := r.Options
	t0 := time.Now()
	lap := func(what string) {
		s.log.Debug("run step", "step", what, "ms", time.Since(t0).Milliseconds())
		t0 = time.Now()
	}
	defer lap("done")
	// Everything that can be checked is checked before anything is made.
	dc, err := s.Docker(ctx)
	if err != nil {
		return nil, err
	}
	if err := dc.EnsureImage(ctx, opts.Config.Image, opts.Pull); err != nil {
		return nil, err
	}
	lap("docker image")
	nc, err := s.Neutron(ctx)
	if err != nil {
		return nil, err
	}
	lap("authenticate")
	sgs, err := nc.SecurityGroupIDs(ctx, r.SecurityGroups)
	if err != nil {
		return nil, err
	}
	popts, err := s.portOptions(ctx, nc, r.PortOptions, opts.Hostname, sgs)
	if err != nil {
		return nil, err
	}
	var nets []*neutron.Network
	cached := map[int]bool{}
	for i, name := range r.Networks {
		n, hit, err := s.findNetwork(ctx, nc, name)
		if err != nil {
			return nil, err
		}
		nets, cached[i] = append(nets, n), hit
	}
	lap("find networks")
	eng, err := s.Engine(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkProjects(s.VMPort(), nets); err != nil {
		return nil, err
	}
	lap("engine")
	if s.useDockerNetworks(r, nets) {
		return s.runOnDockerNetworks(ctx, r, dc, nc, eng, nets, sgs, popts)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find ovn-docker's own executable for the sandbox image: %w", err)
	}
	pause, err := dc.EnsurePauseImage(ctx, exe)
	if err != nil {
		return nil, err
	}

	// Neutron's part of each interface and the sandbox (the network namespace the
	// container will join) are independent: they are made at the same time.
	vif := eng.Config().VIFID
	pending := fmt.Sprintf("run-%d-%s", os.Getpid(), randHex(4))
	// gc in this same process (the agent) leaves this run's sandbox alone while it works.
	defer s.running(pending)()
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
				LabelNets: strings.Join(r.Networks, ","), LabelPID: strconv.Itoa(os.Getpid()), LabelRun: pending},
			Hostname: opts.Hostname, Domainname: opts.Domainname,
			DNS: dnsFor(opts.DNS, nets), DNSSearch: opts.DNSSearch, DNSOptions: opts.DNSOptions,
			ExtraHosts: opts.ExtraHosts, Sysctls: opts.NetworkSysctls,
			// Back whenever Docker brings the container back, for it to start in.
			RestartPolicy: sandboxRestartPolicy(opts.HostConfig.RestartPolicy),
		})
		sbc <- started{info, err}
	}()
	var atts []*state.Attachment
	var app, sandbox string
	defer func() {
		if err == nil {
			return
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
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
	// An interface ready in a pool (the agent fills them) is taken as it is; the others
	// are made now, Neutron's part while the sandbox starts.
	warm := map[string]bool{}
	var prepErr error
	for i, n := range nets {
		req := engine.Request{Owner: pending, OwnerKind: state.OwnerSandbox, ContainerName: opts.Name, Network: n,
			IfName: fmt.Sprintf("eth%d", i), SecurityGroups: sgs, Port: forNetwork(popts, n, i == 0, nets)}
		if i == 0 {
			req.FixedIPs, _ = fixedIPs(opts) // checked by checkRun
		}
		att, err := s.claimFromPool(ctx, eng, req)
		if err == nil && att == nil {
			att, err = eng.Prepare(ctx, req)
			if errors.Is(err, neutron.ErrNotFound) && cached[i] {
				// The network was deleted, or replaced, since the VM's processes found it.
				n, err = s.refindNetwork(ctx, nc, r.Networks[i])
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
		s.step("sandbox")
	}
	if prepErr != nil {
		return nil, prepErr
	}
	if sb.err != nil {
		return nil, sb.err
	}
	s.step("prepared")
	lap("neutron ports and sandbox")
	netns := docker.NetNSPath(sb.info.Pid)
	for i, att := range atts {
		req := engine.Request{Owner: sandbox, OwnerKind: state.OwnerSandbox, IfName: att.IfName, NetNS: netns, DefaultRoute: i == 0}
		var got *state.Attachment
		var err error
		if warm[att.ID] {
			got, err = pool.Take(ctx, eng, att.ID, req)
		} else {
			got, err = eng.Plumb(ctx, att.ID, req)
		}
		if err != nil {
			return nil, fmt.Errorf("attach %s to network %s: %w", att.IfName, att.NetworkName, err)
		}
		atts[i] = got
	}
	s.step("plumbed")
	lap("attach")
	// The user's container, in the sandbox's namespace.
	cfg, hc := opts.Config, opts.HostConfig
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[LabelSandbox] = sandbox
	cfg.Labels[LabelVM] = vif
	cfg.Labels[LabelNets] = strings.Join(r.Networks, ",")
	hc.NetworkMode = container.NetworkMode("container:" + sandbox)
	if !opts.Detach {
		// In the foreground the front end itself removes the container after reading its
		// exit code, and releases its ports with it; Docker's auto-remove would race the read.
		hc.AutoRemove = false
	}
	id, warnings, err := dc.Create(ctx, opts.Name, cfg, hc)
	if err != nil {
		return nil, err
	}
	app = id
	s.step("container-created")
	name := nameOf(ctx, dc, id, opts.Name)
	for _, att := range atts {
		if err := eng.Label(ctx, att.ID, id, name); err != nil {
			s.log.Warn("could not tag the Neutron port with the container", "port", att.PortID, "err", err)
		}
		// A pool's port is named now (a port made for the run was named at creation).
		if dn := popts.DNSName; dn != "" && warm[att.ID] {
			if err := eng.NamePort(ctx, att.PortID, dn); err != nil {
				s.log.Warn("could not give the Neutron port its dns_name", "port", att.PortID, "dns_name", dn, "err", err)
			}
		}
	}
	res, err = s.start(ctx, dc, id, name, warnings, opts.Detach)
	if err != nil {
		return nil, err
	}
	lap("container")
	for _, att := range atts {
		att.Container, att.ContainerName = id, res.Name
		res.Interfaces = append(res.Interfaces, interfaceOf(att))
	}
	return res, nil
}

// start starts the created container when it runs detached (a foreground one is the
// front end's to start, once it waits for its output and its end) and says what Docker
// said of it: its name, and its warnings but the one about forwarding (Docker judges it
// by its own networks).
func (s *Service) start(ctx context.Context, dc *docker.Client, id, name string, warnings []string, detach bool) (*api.RunResult, error) {
	res := &api.RunResult{ID: id, Name: name}
	for _, w := range warnings {
		if !strings.Contains(w, "IPv4 forwarding is disabled") {
			res.Warnings = append(res.Warnings, w)
		}
	}
	if detach {
		if err := dc.Start(ctx, id); err != nil {
			return nil, err
		}
		res.Started = true
		s.step("container-started")
	}
	return res, nil
}

// nameOf is the name Docker gave a created container (the one asked for, or its own).
func nameOf(ctx context.Context, dc *docker.Client, id, asked string) string {
	if info, err := dc.Inspect(ctx, id); err == nil {
		return info.Name
	}
	return asked
}

// running records a run in progress in this process until the returned func is called.
func (s *Service) running(id string) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs == nil {
		s.runs = map[string]bool{}
	}
	s.runs[id] = true
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.runs, id)
	}
}

// isRunning says whether a run of this process is in progress.
func (s *Service) isRunning(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id]
}

// refindNetwork asks Neutron again for a network that was found in the VM's cache.
func (s *Service) refindNetwork(ctx context.Context, nc *neutron.Client, name string) (*neutron.Network, error) {
	s.keepNetwork(name, nil)
	n, _, err := s.findNetwork(ctx, nc, name)
	if err != nil {
		return nil, err
	}
	if err := checkProjects(s.VMPort(), []*neutron.Network{n}); err != nil {
		return nil, err
	}
	return n, nil
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
		return api.Invalid(fmt.Errorf("network %s belongs to project %s, the VM's port %s to project %s: "+
			"a container joins only networks of its VM's project, or shared ones", n.Name, n.ProjectID, vm.ID, vm.ProjectID))
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

func trimName(n string) string {
	if len(n) > 0 && n[0] == '/' {
		return n[1:]
	}
	return n
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
