package docker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// Network is a Docker network as the network plugin reconciles it.
type Network struct {
	ID         string
	Name       string
	Driver     string
	IPAMDriver string
	Subnets    []string // the IPAM configuration's subnets
	Labels     map[string]string
	Endpoints  []Endpoint
}

// Endpoint is one endpoint of a network.
type Endpoint struct {
	ID        string
	Container string // the container whose sandbox joined it; "" when none did
	Name      string // the container's name
	MAC       string
	IPv4      string // CIDR notation
	IPv6      string
}

// Networks returns the networks of one driver (every network when driver is ""), with
// their endpoints. Networks removed while listing are skipped.
func (c *Client) Networks(ctx context.Context, driver string) ([]Network, error) {
	args := filters.NewArgs()
	if driver != "" {
		args.Add("driver", driver)
	}
	list, err := c.api.NetworkList(ctx, network.ListOptions{Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list networks of driver %q: %w", driver, err)
	}
	out := make([]Network, 0, len(list))
	for _, s := range list {
		// The list leaves out endpoints; only inspect gives them.
		n, err := c.Network(ctx, s.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// The driver filter matches by substring: keep the driver's own networks only.
		if driver != "" && n.Driver != driver {
			continue
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Network inspects a network by ID or name; the error matches ErrNotFound when there is
// no such network.
func (c *Client) Network(ctx context.Context, ref string) (Network, error) {
	r, err := c.api.NetworkInspect(ctx, ref, network.InspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Network{}, fmt.Errorf("inspect network %s: %w", ref, ErrNotFound)
		}
		return Network{}, fmt.Errorf("inspect network %s: %w", ref, err)
	}
	return networkFromInspect(r), nil
}

func networkFromInspect(r network.Inspect) Network {
	n := Network{ID: r.ID, Name: r.Name, Driver: r.Driver, IPAMDriver: r.IPAM.Driver, Labels: r.Labels}
	for _, c := range r.IPAM.Config {
		if c.Subnet != "" {
			n.Subnets = append(n.Subnets, c.Subnet)
		}
	}
	for key, e := range r.Containers {
		ep := Endpoint{ID: e.EndpointID, Name: e.Name, MAC: e.MacAddress, IPv4: e.IPv4Address, IPv6: e.IPv6Address}
		// Docker keys an endpoint that no container's sandbox joined "ep-" + its ID.
		if !strings.HasPrefix(key, "ep-") {
			ep.Container = key
		}
		n.Endpoints = append(n.Endpoints, ep)
	}
	sort.Slice(n.Endpoints, func(i, j int) bool { return n.Endpoints[i].ID < n.Endpoints[j].ID })
	return n
}

// NetworkSpec is a network to create with a plugin's driver and IPAM.
type NetworkSpec struct {
	Name        string
	Driver      string // the network driver, also the IPAM driver
	Options     map[string]string
	IPAMOptions map[string]string
	Labels      map[string]string
	// Subnet and Gateway, when set, are the IPAM configuration's: Docker lets its
	// containers have fixed addresses only on a network with a subnet of its own.
	Subnet, Gateway string
	// Subnet6 and Gateway6, when set, make it an IPv6 network too (--ipv6).
	Subnet6, Gateway6 string
}

// CreateNetwork creates a network and returns its ID.
func (c *Client) CreateNetwork(ctx context.Context, s NetworkSpec) (string, error) {
	opts := network.CreateOptions{Driver: s.Driver, Options: s.Options, Labels: s.Labels, IPAM: ipamOf(s)}
	if s.Subnet6 != "" {
		v6 := true
		opts.EnableIPv6 = &v6
	}
	resp, err := c.api.NetworkCreate(ctx, s.Name, opts)
	if err != nil {
		if cerrdefs.IsConflict(err) {
			return "", fmt.Errorf("create network %s: %w: %w", s.Name, ErrConflict, err)
		}
		return "", fmt.Errorf("create network %s: %w", s.Name, err)
	}
	return resp.ID, nil
}

// Connect joins a created (not yet started) container to a network with the given
// endpoint settings (a fixed address, say).
func (c *Client) Connect(ctx context.Context, networkID, containerID string, es *network.EndpointSettings) error {
	if err := c.api.NetworkConnect(ctx, networkID, containerID, es); err != nil {
		return fmt.Errorf("connect container %s to network %s: %w", containerID, networkID, err)
	}
	return nil
}

func ipamOf(s NetworkSpec) *network.IPAM {
	ipam := &network.IPAM{Driver: s.Driver, Options: s.IPAMOptions}
	if s.Subnet != "" {
		ipam.Config = []network.IPAMConfig{{Subnet: s.Subnet, Gateway: s.Gateway}}
	}
	if s.Subnet6 != "" {
		ipam.Config = append(ipam.Config, network.IPAMConfig{Subnet: s.Subnet6, Gateway: s.Gateway6})
	}
	return ipam
}
