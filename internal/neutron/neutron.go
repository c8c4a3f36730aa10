// Package neutron is ovn-docker's Neutron backend: the tenant's networks and subnets, the
// container ports (Neutron is the IPAM: it hands out MAC and IPs), and the link between a
// container port and the VM's port that OVN needs, made either as a trunk subport (the
// default; tenant credentials suffice) or with the admin-only binding:profile
// {parent_name, tag} of the original design. Both give the same Logical_Switch_Port in
// OVN's Northbound database: parent_name = the VM's port, tag = the container's VLAN.
//
// Everything ovn-docker knows of Neutron's answers is here: its refusals are *Error
// values of a kind that callers tell with errors.Is (ErrNotFound, ErrOverQuota,
// ErrNoAddresses...), and Transport resends the requests that may be resent. Nothing
// else calls gophercloud but osauth, which authenticates.
package neutron

import (
	"fmt"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

// Mode is how a container port is tied to the VM's port.
type Mode string

const (
	ModeTrunk          Mode = "trunk"           // VM port is a trunk parent, container ports are its subports
	ModeBindingProfile Mode = "binding-profile" // binding:profile {parent_name, tag}; admin only by default policy
)

// ParseMode checks a --mode value.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeTrunk, "":
		return ModeTrunk, nil
	case ModeBindingProfile:
		return ModeBindingProfile, nil
	}
	return "", fmt.Errorf("unknown mode %q: use %q (default) or %q", s, ModeTrunk, ModeBindingProfile)
}

// Markers that make ovn-docker's ports recognisable in Neutron.
const (
	// DeviceOwner is set on container ports. In trunk mode Neutron replaces it with
	// "trunk:subport" once the port is a subport.
	DeviceOwner = "ovn-docker"
	// NamePrefix starts every container port's name; the attachment ID follows, so a port
	// created by a run that crashed before it learned the port's ID can still be found.
	NamePrefix = "ovn-docker-"
	// Tag marks every container port; TagVM and TagContainer name the VM and container.
	Tag          = "ovn-docker"
	TagVM        = "ovn-docker-vm="
	TagContainer = "ovn-docker-container="
)

// Description is the description of every port ovn-docker creates for the VM: Neutron
// filters on it exactly, so one call lists all of a VM's container ports.
func Description(vifID string) string { return "ovn-docker vm=" + vifID }

// Client talks to Neutron with one tenant's (or admin's) credentials.
type Client struct {
	sc   *gophercloud.ServiceClient
	exts extCache // the API extensions Neutron was asked about
}

// New finds Neutron in the provider's catalog.
func New(pc *gophercloud.ProviderClient, eo gophercloud.EndpointOpts) (*Client, error) {
	sc, err := openstack.NewNetworkV2(pc, eo)
	if err != nil {
		return nil, fmt.Errorf("find neutron in the service catalog: %w", err)
	}
	return &Client{sc: sc, exts: extCache{has: map[string]bool{}}}, nil
}

// ServiceClient exposes the underlying client, for tests and tools.
func (c *Client) ServiceClient() *gophercloud.ServiceClient { return c.sc }
