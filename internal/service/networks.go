package service

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

// Networks lists the networks the credentials see, with how many of this VM's
// containers are on each.
func (s *Service) Networks(ctx context.Context) ([]api.Network, error) {
	nc, err := s.Neutron(ctx)
	if err != nil {
		return nil, err
	}
	nets, err := nc.ListNetworks(ctx)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	if recs, err := s.records(); err == nil {
		if atts, err := recs.Attachments(ctx); err == nil {
			owners := map[string]map[string]bool{}
			for _, at := range atts {
				if owners[at.NetworkID] == nil {
					owners[at.NetworkID] = map[string]bool{}
				}
				owners[at.NetworkID][at.Owner] = true
			}
			for n, o := range owners {
				counts[n] = len(o)
			}
		}
	}
	out := make([]api.Network, 0, len(nets))
	for _, n := range nets {
		out = append(out, networkOf(&n, counts[n.ID]))
	}
	return out, nil
}

func networkOf(n *neutron.Network, containers int) api.Network {
	return api.Network{Name: n.Name, ID: n.ID, CIDRs: n.CIDRs(), MTU: n.MTU, Shared: n.Shared, Containers: containers}
}

// CreateNetwork makes a Neutron network and its subnet, as the tenant. With no subnet,
// the project's default subnet pool gives the range if there is one; otherwise a free
// private /24 that overlaps none of the project's subnets is chosen, and the note says
// which.
func (s *Service) CreateNetwork(ctx context.Context, r api.CreateNetworkRequest) (*api.CreateNetworkResult, error) {
	// The name is checked by the neutron package, with the others' rules.
	opts := neutron.CreateNetworkOpts{Name: r.Name, NoIPv4: r.NoIPv4, NoDHCP: r.NoDHCP,
		IPv6AddressMode: r.IPv6AddressMode, IPv6RAMode: r.IPv6RAMode,
		SubnetPool: r.SubnetPool, SubnetPool6: r.IPv6SubnetPool, PrefixLen: r.PrefixLength, PrefixLen6: r.IPv6PrefixLength}
	var err error
	if r.Subnet != "" {
		if opts.Subnet, err = ParsePrefix("--subnet", r.Subnet); err != nil {
			return nil, err
		}
	}
	if r.Gateway != "" {
		if opts.Gateway, err = netip.ParseAddr(r.Gateway); err != nil {
			return nil, api.Invalid(fmt.Errorf("--gateway %q is not an IP address", r.Gateway))
		}
	}
	if r.IPv6Subnet != "" {
		if opts.IPv6, err = ParsePrefix("--ipv6-subnet", r.IPv6Subnet); err != nil {
			return nil, err
		}
	}
	if err := checkFamilies(r); err != nil {
		return nil, err
	}
	nc, err := s.Neutron(ctx)
	if err != nil {
		return nil, err
	}
	n, note, err := nc.CreateNetwork(ctx, opts)
	if errors.Is(err, neutron.ErrNotFound) && (r.SubnetPool != "" || r.IPv6SubnetPool != "") {
		return nil, api.NotFound(err)
	}
	if err != nil {
		return nil, err
	}
	s.keepNetwork(n.Name, n)
	return &api.CreateNetworkResult{Network: networkOf(n, 0), Note: note}, nil
}

// checkFamilies refuses flag combinations that cannot make a network, before Neutron is
// asked (the neutron package checks them again, for its other callers).
func checkFamilies(r api.CreateNetworkRequest) error {
	switch {
	case r.NoIPv4 && (r.Subnet != "" || r.Gateway != ""):
		return api.Invalid(errors.New("--ipv4=false makes an IPv6-only network: drop --subnet and --gateway"))
	case r.NoIPv4 && r.IPv6Subnet == "" && r.IPv6SubnetPool == "":
		return api.Invalid(errors.New("--ipv4=false needs --ipv6-subnet or --ipv6-subnet-pool"))
	case r.IPv6Subnet == "" && r.IPv6SubnetPool == "" && (r.IPv6AddressMode != "" || r.IPv6RAMode != ""):
		return api.Invalid(errors.New("--ipv6-address-mode and --ipv6-ra-mode need --ipv6-subnet"))
	case r.PrefixLength != 0 && r.Subnet != "":
		return api.Invalid(errors.New("--prefix-length sizes a subnet chosen for you: drop it with --subnet"))
	}
	if _, _, err := neutron.IPv6Modes(r.IPv6AddressMode, r.IPv6RAMode, !r.NoDHCP); err != nil {
		return api.Invalid(err)
	}
	return nil
}

// ParsePrefix reads a CIDR given for flag, refusing host bits.
func ParsePrefix(flag, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, api.Invalid(fmt.Errorf("%s %q is not a CIDR (like 10.0.5.0/24)", flag, s))
	}
	if p.Masked() != p {
		return p, api.Invalid(fmt.Errorf("%s %q has host bits set: did you mean %s?", flag, s, p.Masked()))
	}
	return p, nil
}

// DeleteNetwork deletes a Neutron network; it refuses while containers use it.
func (s *Service) DeleteNetwork(ctx context.Context, name string) (*api.Network, error) {
	if name == "" {
		return nil, api.Invalid(errors.New("delete network needs a NAME"))
	}
	nc, err := s.Neutron(ctx)
	if err != nil {
		return nil, err
	}
	n, err := nc.FindNetwork(ctx, name)
	if errors.Is(err, neutron.ErrNotFound) {
		return nil, api.NotFound(err)
	}
	if err != nil {
		return nil, err
	}
	if err := s.networkInUse(ctx, nc, n); err != nil {
		return nil, api.Conflict(err)
	}
	if err := s.removeRunNetworks(ctx, n.ID); err != nil {
		return nil, err
	}
	if err := nc.DeleteNetwork(ctx, n.ID); err != nil {
		return nil, err
	}
	s.keepNetwork(name, nil)
	s.keepNetwork(n.Name, nil)
	out := networkOf(n, 0)
	return &out, nil
}

// networkInUse refuses while containers (of this VM, or ports of any VM made by
// ovn-docker) are on the network.
func (s *Service) networkInUse(ctx context.Context, nc *neutron.Client, n *neutron.Network) error {
	var local []string
	if recs, err := s.records(); err == nil {
		atts, _ := recs.AttachmentsOn(ctx, n.ID)
		for _, at := range atts {
			local = append(local, firstNonEmpty(at.ContainerName, short(at.Container), short(at.Owner)))
		}
	}
	if len(local) > 0 {
		sort.Strings(local)
		return fmt.Errorf("network %s is used by %d container interface(s) in this VM (%s): remove them first (ovn-docker rm)",
			n.Name, len(local), strings.Join(local, ", "))
	}
	ports, err := nc.PortsOnNetwork(ctx, n.ID)
	if err != nil {
		return err
	}
	// This VM's own ports that no attachment records were left by an interrupted run
	// (a process killed while Neutron was making its port): gc removes them.
	var mine string
	if vif, err := s.VIF(ctx); err == nil {
		mine = neutron.Description(vif)
	}
	var ours, orphans []string
	for _, p := range ports {
		switch {
		case mine != "" && p.Description == mine:
			orphans = append(orphans, p.ID)
		case strings.HasPrefix(p.Description, "ovn-docker vm=") || strings.HasPrefix(p.Name, neutron.NamePrefix):
			ours = append(ours, p.ID)
		}
	}
	if len(orphans) > 0 && len(ours) == 0 {
		return fmt.Errorf("network %s still has %d port(s) of this VM that no container holds (%s), left by an interrupted ovn-docker: run \"ovn-docker gc\", then delete it again",
			n.Name, len(orphans), strings.Join(orphans, ", "))
	}
	ours = append(ours, orphans...)
	if len(ours) > 0 {
		return fmt.Errorf("network %s still has %d container port(s) of other VMs (%s): remove those containers first",
			n.Name, len(ours), strings.Join(ours, ", "))
	}
	return nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// removeRunNetworks removes the Docker networks ovn-docker run made for a Neutron
// network that is being deleted: they would carry a network that no longer exists.
func (s *Service) removeRunNetworks(ctx context.Context, neutronID string) error {
	st, err := s.Store()
	if err != nil {
		return err
	}
	recs, err := engine.NewRecords(st).DockerRecords(ctx)
	if err != nil || len(recs.Networks) == 0 {
		return err
	}
	dc, err := s.Docker(ctx)
	if err != nil {
		return err
	}
	for id, rec := range recs.Networks {
		if rec.NeutronNetwork != neutronID {
			continue
		}
		dn, err := dc.Network(ctx, id)
		if err != nil || dn.Labels[LabelMadeBy] == "" {
			continue // gone, or the user's own: theirs to remove
		}
		if err := dc.RemoveNetwork(ctx, id); err != nil {
			return fmt.Errorf("remove Docker network %s, which ovn-docker run made for it: %w", dn.Name, err)
		}
	}
	return nil
}
