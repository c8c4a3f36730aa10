// Package api is the local API of a VM's agent (ovn-docker daemon): HTTP and JSON on a
// unix socket in the state directory that only root may use, with versioned paths
// (/v1/...). Every front end speaks it: the CLI, when the agent runs, and the CNI shim.
// Backend is the one contract: the agent's service implements it in-process (so the
// CLI without an agent runs the very same code), and Client implements it over the
// socket, so a front end does not care which it holds.
package api

import (
	"context"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/runargs"
)

// Version is the path prefix of this API's calls.
const Version = "v1"

// SocketName is the agent's socket in the state directory.
const SocketName = "agent.sock"

// Backend runs a VM's container networking: *service.Service in-process, *Client
// through the agent.
type Backend interface {
	// Run starts a container with an interface on each network, ready before the
	// container's first instruction.
	Run(ctx context.Context, r RunRequest) (*RunResult, error)
	// Remove releases a container's interfaces and removes it.
	Remove(ctx context.Context, r RemoveRequest) error
	// Interfaces lists the VM's container interfaces (ovn-docker ps).
	Interfaces(ctx context.Context) ([]Interface, error)
	Networks(ctx context.Context) ([]Network, error)
	CreateNetwork(ctx context.Context, r CreateNetworkRequest) (*CreateNetworkResult, error)
	DeleteNetwork(ctx context.Context, name string) (*Network, error)
	Pools(ctx context.Context) ([]Pool, error)
	// GC finishes what interrupted work left and deletes what no container owns.
	GC(ctx context.Context, r GCRequest) (*GCResult, error)
	// Attach gives a network namespace an interface on a network (the CNI's ADD);
	// Detach releases it (DEL). Both are idempotent.
	Attach(ctx context.Context, r AttachRequest) (*Attachment, error)
	Detach(ctx context.Context, r DetachRequest) error
	// Check compares an attached interface with what it was given and with the world
	// (the CNI's CHECK): a Drift error lists every difference.
	Check(ctx context.Context, r CheckRequest) error
	// Collect releases the attachments of an owner prefix that are not to be kept (the
	// CNI's GC).
	Collect(ctx context.Context, r CollectRequest) (*CollectResult, error)
	// NetworkReady says whether an attach on network can work now (the CNI's STATUS):
	// nil, or an Unavailable error saying what does not answer.
	NetworkReady(ctx context.Context, network string) error
	Status(ctx context.Context) (*Status, error)
}

// RunRequest is ovn-docker run: its networks and docker run's parsed arguments.
type RunRequest struct {
	Networks       []string         `json:"networks"`
	SecurityGroups []string         `json:"security_groups,omitempty"`
	Options        *runargs.Options `json:"options"`
	PortOptions
}

// RunResult is the container made, started when it runs detached. A foreground run's
// container is left created, for the front end to attach to its output and wait for
// its end before it starts it (as docker run does).
type RunResult struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Interfaces []Interface `json:"interfaces"`
	// Warnings are Docker's, for the user.
	Warnings []string `json:"warnings,omitempty"`
	Started  bool     `json:"started"`
	// AutoRemove: Docker removes the container when it ends (a foreground --rm on the
	// agent's Docker networks), and the agent releases its ports then.
	AutoRemove bool `json:"auto_remove,omitempty"`
}

// RemoveRequest is ovn-docker rm of one container.
type RemoveRequest struct {
	Container string `json:"container"`
	Force     bool   `json:"force,omitempty"`
}

// Interface is one container interface of the VM.
type Interface struct {
	Container string    `json:"container"`
	Name      string    `json:"name"`
	Sandbox   string    `json:"sandbox"`
	Network   string    `json:"network"`
	NetworkID string    `json:"network_id"`
	Interface string    `json:"interface"`
	VLAN      int       `json:"vlan"`
	MAC       string    `json:"mac"`
	IPs       []string  `json:"ips"`
	Gateways  []string  `json:"gateways,omitempty"`
	MTU       int       `json:"mtu,omitempty"`
	Port      string    `json:"port_id"`
	HostIf    string    `json:"host_interface"`
	State     string    `json:"state"`
	Mode      string    `json:"mode"`
	Pool      string    `json:"pool,omitempty"`
	Created   time.Time `json:"created"`
	Error     string    `json:"error,omitempty"`
	// Note says what the agent could not do for it, for ps (a container Docker started
	// again that could not get its own address back, say).
	Note string `json:"note,omitempty"`
}

// Network is a Neutron network the credentials see.
type Network struct {
	Name       string   `json:"name"`
	ID         string   `json:"id"`
	CIDRs      []string `json:"cidrs"`
	MTU        int      `json:"mtu"`
	Shared     bool     `json:"shared"`
	Containers int      `json:"containers"` // this VM's containers on it
}

// CreateNetworkRequest is ovn-docker create network.
type CreateNetworkRequest struct {
	Name       string `json:"name"`
	Subnet     string `json:"subnet,omitempty"`  // IPv4 CIDR; empty: chosen
	Gateway    string `json:"gateway,omitempty"` // empty: the subnet's first address
	IPv6Subnet string `json:"ipv6_subnet,omitempty"`
	// NoIPv4: an IPv6-only network (--ipv4=false).
	NoIPv4          bool   `json:"no_ipv4,omitempty"`
	IPv6AddressMode string `json:"ipv6_address_mode,omitempty"` // slaac, dhcpv6-stateful, dhcpv6-stateless, none
	IPv6RAMode      string `json:"ipv6_ra_mode,omitempty"`
	NoDHCP          bool   `json:"no_dhcp,omitempty"`
	// SubnetPool and IPv6SubnetPool (name or ID) give the subnets from Neutron subnet
	// pools, of PrefixLength and IPv6PrefixLength bits (0: the pool's default).
	SubnetPool       string `json:"subnet_pool,omitempty"`
	IPv6SubnetPool   string `json:"ipv6_subnet_pool,omitempty"`
	PrefixLength     int    `json:"prefix_length,omitempty"`
	IPv6PrefixLength int    `json:"ipv6_prefix_length,omitempty"`
}

// CreateNetworkResult is the network made, and how its range was chosen.
type CreateNetworkResult struct {
	Network Network `json:"network"`
	Note    string  `json:"note"`
}

// Pool is a pool of ready interfaces.
type Pool struct {
	Key       string `json:"key"`
	Network   string `json:"network"`
	NetworkID string `json:"network_id"`
	Min       int    `json:"min"`
	Max       int    `json:"max"`
	Target    int    `json:"target"` // Min, lowered while Neutron refuses more
	Ready     int    `json:"ready"`
	Filling   int    `json:"filling"`
	Reason    string `json:"reason,omitempty"` // why the target is below Min
}

// GCRequest is ovn-docker gc.
type GCRequest struct {
	Grace      time.Duration `json:"grace"`
	DrainPools bool          `json:"drain_pools,omitempty"`
}

// GCResult says what a collection did.
type GCResult struct {
	Drained     int      `json:"drained"`
	Interrupted int      `json:"interrupted"`
	OwnerGone   int      `json:"owner_gone"`
	Ports       int      `json:"ports"`
	OVSPorts    int      `json:"ovs_ports"`
	Veths       int      `json:"veths"`
	Marked      int      `json:"marked"`
	Sandboxes   int      `json:"sandboxes"`
	Errors      []string `json:"errors,omitempty"`
	Summary     string   `json:"summary"`
}

// AttachRequest gives the namespace NetNS an interface IfName on Network, for a CNI
// runtime's container.
type AttachRequest struct {
	// Owner is who holds the interface: for the CNI, "cni:NETWORK:CONTAINERID"
	// (CNIOwner), so that a GC of one CNI network judges its own only.
	Owner          string   `json:"owner"`
	Network        string   `json:"network"` // Neutron name or ID
	SecurityGroups []string `json:"security_groups,omitempty"`
	NetNS          string   `json:"netns"`
	IfName         string   `json:"ifname"`
	DefaultRoute   bool     `json:"default_route,omitempty"`
	// Container and ContainerName tag the Neutron port.
	Container     string `json:"container,omitempty"`
	ContainerName string `json:"container_name,omitempty"`
	// PoolMin and PoolMax (a CNI configuration's "pool") ask the agent to keep
	// interfaces of the network ready, from this ADD on, for the ones after it.
	PoolMin int `json:"pool_min,omitempty"`
	PoolMax int `json:"pool_max,omitempty"`
	PortOptions
	// Hostname gives the port its dns_name, where Neutron has DNS integration.
	Hostname string `json:"hostname,omitempty"`
}

// DetachRequest releases Owner's interface IfName ("" for all of Owner's).
type DetachRequest struct {
	Owner  string `json:"owner"`
	IfName string `json:"ifname,omitempty"`
}

// CNIOwner is the owner of a CNI runtime's interface: its network (the conflist's
// name) and its container.
func CNIOwner(network, containerID string) string {
	return CNIOwnerPrefix(network) + containerID
}

// CNIOwnerPrefix is what every owner of a CNI network's interfaces starts with.
func CNIOwnerPrefix(network string) string { return "cni:" + network + ":" }

// CheckRequest asks whether Owner's IfName is still what ADD made: MAC and IPs (CIDR
// notation) are what ADD's result said, when the caller has it.
type CheckRequest struct {
	Owner  string   `json:"owner"`
	IfName string   `json:"ifname"`
	MAC    string   `json:"mac,omitempty"`
	IPs    []string `json:"ips,omitempty"`
}

// CollectRequest releases the interfaces whose owner starts with OwnerPrefix, except
// those in Keep.
type CollectRequest struct {
	OwnerPrefix string          `json:"owner_prefix"`
	Keep        []AttachmentKey `json:"keep"`
}

// AttachmentKey names one interface: its owner and its name in the container.
type AttachmentKey struct {
	Owner  string `json:"owner"`
	IfName string `json:"ifname"`
}

// CollectResult says what a collection released.
type CollectResult struct {
	Released []AttachmentKey `json:"released"`
}

// Attachment is an attached interface, with what the container needs to know of it.
type Attachment struct {
	Interface
	DNS []string `json:"dns,omitempty"` // the subnet's nameservers
}

// Status is what ovn-docker status shows.
type Status struct {
	Agent       AgentInfo `json:"agent"`
	Checks      []Check   `json:"checks"`
	Pools       []Pool    `json:"pools"`
	Attachments int       `json:"attachments"`
	LastErrors  []string  `json:"last_errors,omitempty"`
}

// AgentInfo says which agent answers.
type AgentInfo struct {
	Running bool      `json:"running"` // false: the standalone CLI answered
	Version string    `json:"version,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Since   time.Time `json:"since,omitempty"`
	VIFID   string    `json:"vif_id,omitempty"`
	Bridge  string    `json:"bridge,omitempty"`
}

// Check is one thing the VM needs, and whether it works.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix,omitempty"` // doctor: what to do when it fails
}
