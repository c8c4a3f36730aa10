// Package neutron is ovn-docker's Neutron backend: the tenant's networks and subnets, the
// container ports (Neutron is the IPAM: it hands out MAC and IPs), and the link between a
// container port and the VM's port that OVN needs, made either as a trunk subport (the
// default; tenant credentials suffice) or with the admin-only binding:profile
// {parent_name, tag} of the original design. Both give the same Logical_Switch_Port in
// OVN's Northbound database: parent_name = the VM's port, tag = the container's VLAN.
package neutron

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

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

// ErrNotFound is returned (wrapped) for a network, port or trunk that does not exist or
// that the credentials may not see: Neutron answers both the same way.
var ErrNotFound = errors.New("not found")

// ErrNetworkInUse is returned (wrapped) when Neutron refuses to delete a network that
// still has ports.
var ErrNetworkInUse = errors.New("network in use")

// Client talks to Neutron with one tenant's (or admin's) credentials.
type Client struct {
	sc *gophercloud.ServiceClient
}

// New finds Neutron in the provider's catalog.
func New(pc *gophercloud.ProviderClient, eo gophercloud.EndpointOpts) (*Client, error) {
	sc, err := openstack.NewNetworkV2(pc, eo)
	if err != nil {
		return nil, fmt.Errorf("find neutron in the service catalog: %w", err)
	}
	return &Client{sc: sc}, nil
}

// ServiceClient exposes the underlying client, for tests and tools.
func (c *Client) ServiceClient() *gophercloud.ServiceClient { return c.sc }

// isNotFound reports a 404 from Neutron.
func isNotFound(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusNotFound) }

// isForbidden reports a 403 from Neutron: its policy refused the call.
func isForbidden(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusForbidden) }

// isConflict reports a 409 from Neutron.
func isConflict(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusConflict) }

// neutronMessage pulls Neutron's own explanation out of an error, so users read "Quota
// exceeded for resources: ['port']" rather than a dump of the HTTP exchange.
func neutronMessage(err error) string {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		var body struct {
			NeutronError struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"NeutronError"`
		}
		if json.Unmarshal(e.Body, &body) == nil && body.NeutronError.Message != "" {
			return fmt.Sprintf("%s (%s, HTTP %d)", body.NeutronError.Message, body.NeutronError.Type, e.Actual)
		}
		return fmt.Sprintf("HTTP %d from %s %s", e.Actual, e.Method, e.URL)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return fmt.Sprintf("cannot reach Neutron at %s (%v)", u.Host, ue.Err)
		}
	}
	return err.Error()
}

// neutronType is the NeutronError type of a failed call ("PortInUse", "OverQuota"...).
func neutronType(err error) string {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		var body struct {
			NeutronError struct {
				Type string `json:"type"`
			} `json:"NeutronError"`
		}
		if json.Unmarshal(e.Body, &body) == nil {
			return body.NeutronError.Type
		}
	}
	return ""
}

// apiError wraps a Neutron error with what was being done and Neutron's explanation,
// keeping the original for errors.Is/As.
type apiError struct {
	op  string
	msg string
	err error
}

func (e *apiError) Error() string { return e.op + ": " + e.msg }
func (e *apiError) Unwrap() []error {
	switch {
	case isNotFound(e.err):
		return []error{e.err, ErrNotFound}
	case isConflict(e.err) && neutronType(e.err) == "NetworkInUse":
		return []error{e.err, ErrNetworkInUse}
	}
	return []error{e.err}
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return &apiError{op: fmt.Sprintf(format, args...), msg: neutronMessage(err), err: err}
}
