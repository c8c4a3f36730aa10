package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// maxDockerNetworks is the most networks a run puts on Docker networks: Docker connects
// a container's networks after the first in no fixed order, so beyond two their
// interfaces' names (eth1, eth2) would not follow --network's order; such a run takes
// the sandbox's way, which names them exactly.
const maxDockerNetworks = 2

// LabelMadeBy marks the Docker networks ovn-docker run made for its containers.
const LabelMadeBy = "org.ovn-docker.made-by"

// useDockerNetworks says whether this run goes through the agent's Docker plugin: the
// container is created on a Docker network of the plugin per Neutron network, and
// Docker's own network hooks put its interfaces in place (from the pools, with the
// ports reserved here), with no sandbox container: one container start, not two.
// An IPv6-only network takes the sandbox's way (see dockerCarries).
func (s *Service) useDockerNetworks(r api.RunRequest, nets []*neutron.Network) bool {
	return s.cfg.DockerPlugin != "" && len(r.Networks) <= maxDockerNetworks && dockerCarries(nets)
}

// runOnDockerNetworks is Run through the agent's Docker plugin. Each interface is made
// ready first (a pool's, or made now and its data path proven) and reserved for the run;
// the container is created with those addresses as fixed ones, so that Docker's IPAM
// request gets exactly the reserved port, now and each time Docker starts the container
// again (its removal releases it).
func (s *Service) runOnDockerNetworks(ctx context.Context, r api.RunRequest, dc *docker.Client, nc *neutron.Client, eng *engine.Engine,
	nets []*neutron.Network, sgs []string, popts neutron.PortOptions) (res *api.RunResult, err error) {
	s.ran()
	opts := r.Options
	pending := fmt.Sprintf("run-%s", randHex(6))
	var reserved []*state.Attachment
	var app string
	defer func() {
		if err == nil {
			return
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if app != "" {
			// Docker gives its ports up to the plugin, which releases them: the
			// container was never labelled, so nothing is parked for it.
			if rerr := dc.Remove(uctx, app, true); rerr != nil {
				err = fmt.Errorf("%w (and removing container %s failed: %v)", err, short(app), rerr)
			}
		}
		for _, a := range reserved {
			cur, rerr := eng.Attachment(uctx, a.ID)
			if rerr == nil && cur != nil && cur.OwnerKind == state.OwnerReserved {
				if rerr := eng.Detach(uctx, a.ID); rerr != nil {
					err = fmt.Errorf("%w (and releasing %s failed: %v; run ovn-docker gc)", err, a.NetworkName, rerr)
				}
			}
		}
	}()

	// The Docker networks, and an interface ready on each.
	dnets := make([]string, len(nets))
	for i, n := range nets {
		if dnets[i], err = s.dockerNetworkFor(ctx, dc, eng, n, sgs); err != nil {
			return nil, err
		}
		// Docker names the interface of the container's own network eth0, the other eth1.
		var fixed []netip.Addr
		if i == 0 {
			fixed, _ = fixedIPs(opts) // checked by checkRun
		}
		a, err := s.reserve(ctx, eng, pending, opts.Name, fmt.Sprintf("eth%d", i), n, sgs, i > 0, fixed, forNetwork(popts, n, i == 0, nets))
		if err != nil {
			return nil, fmt.Errorf("attach eth%d to network %s: %w", i, n.Name, err)
		}
		reserved = append(reserved, a)
	}
	s.step("prepared")

	cfg, hc := opts.Config, opts.HostConfig
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[LabelVM] = eng.Config().VIFID
	cfg.Labels[LabelNets] = strings.Join(r.Networks, ",")
	// What the sandbox would hold is the container's own here.
	cfg.Hostname, cfg.Domainname = opts.Hostname, opts.Domainname
	hc.DNS, hc.DNSSearch, hc.DNSOptions = dnsFor(opts.DNS, nets), opts.DNSSearch, opts.DNSOptions
	hc.ExtraHosts = opts.ExtraHosts
	if len(opts.NetworkSysctls) > 0 {
		if hc.Sysctls == nil {
			hc.Sysctls = map[string]string{}
		}
		maps.Copy(hc.Sysctls, opts.NetworkSysctls)
	}
	hc.NetworkMode = container.NetworkMode(dnets[0])
	if !opts.Detach {
		// In the foreground the front end waits for the container's end, then for its
		// removal with --rm: Docker removes it, and the agent releases its ports then,
		// off the user's critical path.
		hc.AutoRemove = opts.Remove
	}
	id, warnings, err := dc.CreateOn(ctx, opts.Name, cfg, hc, map[string]*network.EndpointSettings{dnets[0]: endpointFor(reserved[0], nets[0])})
	if err != nil {
		return nil, err
	}
	app = id
	s.step("container-created")
	for i := 1; i < len(dnets); i++ {
		if err := dc.Connect(ctx, dnets[i], id, endpointFor(reserved[i], nets[i])); err != nil {
			return nil, err
		}
	}
	// Named before the start: its ports are kept for it when Docker stops it. The tags
	// in Neutron (for operators) wait for no one.
	restarts := hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled
	name := nameOf(ctx, dc, id, opts.Name)
	for _, a := range reserved {
		portID, err := eng.Name(ctx, a.ID, id, name)
		if err != nil {
			return nil, err
		}
		if restarts {
			if err := eng.SetRestarts(ctx, a.ID, true); err != nil {
				return nil, err
			}
		}
		s.whenQuiet(func(ctx context.Context) {
			// A foreground --rm container may be gone, and its port with it.
			if err := eng.TagPort(ctx, portID, id); err != nil && !errors.Is(err, neutron.ErrNotFound) {
				s.log.Warn("could not tag the Neutron port with the container", "port", portID, "err", err)
			}
		})
	}
	if res, err = s.start(ctx, dc, id, name, warnings, opts.Detach); err != nil {
		return nil, err
	}
	res.AutoRemove = hc.AutoRemove
	for _, a := range reserved {
		if cur, err := eng.Attachment(ctx, a.ID); err == nil && cur != nil {
			a = cur
		}
		res.Interfaces = append(res.Interfaces, interfaceOf(a))
	}
	return res, nil
}

// reserve makes an interface on n ready for a run, held by it: a pool's ready one, else
// one made now (port, subport, pair in the VM, access port, data path proven).
func (s *Service) reserve(ctx context.Context, eng *engine.Engine, run, name, ifName string, n *neutron.Network, sgs []string, secondary bool,
	fixed []netip.Addr, port neutron.PortOptions) (*state.Attachment, error) {
	req := engine.Request{Owner: run, OwnerKind: state.OwnerReserved, ContainerName: name, Network: n,
		SecurityGroups: sgs, Secondary: secondary, IfName: ifName, FixedIPs: fixed, Port: port}
	if pool.Fits(req) { // a pool's port has Neutron's addresses and defaults only
		to := engine.Holder{Owner: run, Kind: state.OwnerReserved}
		a, err := s.reserveFromPool(ctx, eng, pool.Key(n.ID, sgs), to, func(a *state.Attachment) {
			a.Secondary, a.ContainerName, a.IfName = secondary, name, ifName
		})
		if a != nil && port.DNSName != "" {
			s.nameLater(eng, a.PortID, port.DNSName)
		}
		if err != nil || a != nil {
			return a, err
		}
	}
	return eng.Attach(ctx, req)
}

// dockerNetworkFor returns the Docker network of the plugin that carries n with these
// security groups: one the plugin has, else one made for it, named after n.
func (s *Service) dockerNetworkFor(ctx context.Context, dc *docker.Client, eng *engine.Engine, n *neutron.Network, sgs []string) (string, error) {
	// One run at a time makes a network, so that two do not make two.
	s.netMu.Lock()
	defer s.netMu.Unlock()
	recs, err := eng.DockerRecords(ctx)
	if err != nil {
		return "", err
	}
	want := slices.Sorted(slices.Values(sgs))
	ids := slices.Sorted(maps.Keys(recs.Networks))
	for _, id := range ids {
		rec := recs.Networks[id]
		if rec.NeutronNetwork != n.ID || !slices.Equal(slices.Sorted(slices.Values(rec.SecurityGroups)), want) {
			continue
		}
		// Docker gives fixed addresses only on networks created with a subnet (inspect
		// shows one for any network): the ones made here are.
		if dn, err := dc.Network(ctx, id); err == nil && dn.Labels[LabelMadeBy] != "" && sameSubnets(dn.Subnets, n) {
			return id, nil
		}
	}
	sub, ok, sub6, ok6 := dockerSubnets(n)
	if !ok {
		return "", api.Invalid(fmt.Errorf("neutron network %s has no IPv4 subnet, which Docker 20.10 needs on every network: run with --standalone", n.Name))
	}
	var gw, cidr6, gw6 string
	if sub.Gateway.IsValid() {
		gw = sub.Gateway.String()
	}
	if ok6 {
		cidr6 = sub6.CIDR.String()
		if sub6.Gateway.IsValid() {
			gw6 = sub6.Gateway.String()
		}
	}
	opts := map[string]string{"neutron.net.id": n.ID}
	if len(sgs) > 0 {
		opts["neutron.security_groups"] = strings.Join(sgs, ",")
	}
	ipam := map[string]string{"neutron.net.id": n.ID}
	names := []string{n.Name, n.Name + "-ovn", "ovn-" + short(n.ID)}
	if len(sgs) > 0 {
		names = []string{"ovn-" + short(n.ID) + "-" + randHex(3)}
	}
	var last error
	for _, name := range names {
		id, err := dc.CreateNetwork(ctx, docker.NetworkSpec{Name: name, Driver: s.cfg.DockerPlugin, Options: opts, IPAMOptions: ipam,
			Subnet: sub.CIDR.String(), Gateway: gw, Subnet6: cidr6, Gateway6: gw6, Labels: map[string]string{LabelMadeBy: "ovn-docker run"}})
		if err == nil {
			s.log.Info("made a Docker network for ovn-docker run", "network", name, "neutron_network", n.ID, "ipv6", cidr6)
			return id, nil
		}
		if !errors.Is(err, docker.ErrConflict) {
			return "", err
		}
		last = err
	}
	return "", fmt.Errorf("no Docker network for Neutron network %s: %w", n.Name, last)
}

// firstIPv4 is an attachment's first IPv4 address, bare.
func firstIPv4(a *state.Attachment) string {
	for _, ip := range a.IPs {
		if addr, _, ok := strings.Cut(ip, "/"); ok && !strings.Contains(addr, ":") {
			return addr
		}
	}
	return ""
}
