package neutron

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/dns"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
)

// PortRequest describes a container port to create.
type PortRequest struct {
	NetworkID      string
	AttachmentID   string   // goes into the port's name
	VIFID          string   // the VM's port: the description marker, and the parent in binding-profile mode
	Mode           Mode     // binding-profile puts parent_name/tag on the port itself
	VLAN           int      // the tag, in binding-profile mode
	SecurityGroups []string // nil: Neutron's default for the project
	// HostID binds the port to the parent VM's host, in binding-profile mode (admin):
	// an unbound port never turns ACTIVE, and a trunk binds its subports the same way.
	HostID string
	// ProjectID makes the port the network's project's (admin only): the container then
	// sits in that project's security groups, like the tenant's own containers.
	ProjectID string
	Options   PortOptions // allowed addresses, QoS, DNS name, port security
	// FixedIPs are the addresses asked for (--ip, --ip6) or the subnets to take one
	// from; none: Neutron's choice, one per family.
	FixedIPs []FixedIPRequest
}

// Port is a Neutron port as ovn-docker needs it.
type Port struct {
	ID             string           `json:"id"`
	Name           string           `json:"name"`
	NetworkID      string           `json:"network_id"`
	MAC            net.HardwareAddr `json:"-"`
	FixedIPs       []FixedIP        `json:"fixed_ips"`
	Status         string           `json:"status"`
	AdminDown      bool             `json:"-"` // admin_state_up false: the port carries nothing
	Description    string           `json:"description"`
	DeviceOwner    string           `json:"device_owner"`
	DeviceID       string           `json:"device_id"`
	SecurityGroups []string         `json:"security_groups"`
	Tags           []string         `json:"tags"`
	ProjectID      string           `json:"project_id"`
	HostID         string           `json:"binding:host_id,omitempty"` // admin only
}

// FixedIP is one address Neutron gave the port.
type FixedIP struct {
	SubnetID string     `json:"subnet_id"`
	IP       netip.Addr `json:"ip_address"`
}

// PortName is the name of the port of an attachment.
func PortName(attachmentID string) string { return NamePrefix + attachmentID }

func (r PortRequest) build() (ports.CreateOptsBuilder, error) {
	if r.NetworkID == "" || r.AttachmentID == "" || r.VIFID == "" {
		return nil, errors.New("port request needs a network, an attachment ID and the VM's port")
	}
	base := ports.CreateOpts{
		NetworkID:   r.NetworkID,
		Name:        PortName(r.AttachmentID),
		Description: Description(r.VIFID),
		DeviceOwner: DeviceOwner,
		ProjectID:   r.ProjectID,
		// No device_id: Neutron refuses a port with one as a trunk subport ("PortInUse").
	}
	if f := fixedIPsOpt(r.FixedIPs); f != nil {
		base.FixedIPs = f
	}
	if r.SecurityGroups != nil {
		sg := append([]string(nil), r.SecurityGroups...)
		base.SecurityGroups = &sg
	}
	if err := r.Options.check(r.SecurityGroups); err != nil {
		return nil, err
	}
	b := r.Options.apply(base)
	switch r.Mode {
	case ModeTrunk, "":
		return b, nil
	case ModeBindingProfile:
		if r.VLAN < 1 || r.VLAN > 4094 {
			return nil, fmt.Errorf("binding-profile port needs a VLAN, got %d", r.VLAN)
		}
		return portsbinding.CreateOptsExt{CreateOptsBuilder: b, HostID: r.HostID, Profile: map[string]any{
			"parent_name": r.VIFID, "tag": r.VLAN,
		}}, nil
	}
	return nil, fmt.Errorf("unknown mode %q", r.Mode)
}

// bindingProfileHint explains a 403 in binding-profile mode: Neutron's default policy
// gives binding:profile to admins only, and its own message names just the policy rule.
const bindingProfileHint = "binding-profile mode needs admin credentials under Neutron's default policy; " +
	"with tenant credentials use mode \"trunk\""

// CreatePort creates one container port.
func (c *Client) CreatePort(ctx context.Context, r PortRequest) (*Port, error) {
	b, err := r.build()
	if err != nil {
		return nil, err
	}
	var p rawPort
	if err := ports.Create(ctx, c.sc, b).ExtractInto(&p); err != nil {
		if r.Mode == ModeBindingProfile && isForbidden(err) {
			return nil, wrap(err, "%s: %s", portOp(r), bindingProfileHint)
		}
		if !r.Options.Empty() && isForbidden(err) {
			return nil, wrap(err, "%s: %s", portOp(r), portOptionsHint(r.Options))
		}
		return nil, wrap(err, "%s", portOp(r))
	}
	return p.port()
}

// CreatePorts creates several ports in one bulk request: Neutron makes all or none.
func (c *Client) CreatePorts(ctx context.Context, rs []PortRequest) ([]Port, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	body := struct {
		Ports []map[string]any `json:"ports"`
	}{}
	for _, r := range rs {
		b, err := r.build()
		if err != nil {
			return nil, err
		}
		m, err := b.ToPortCreateMap()
		if err != nil {
			return nil, err
		}
		body.Ports = append(body.Ports, m["port"].(map[string]any))
	}
	var res struct {
		Ports []rawPort `json:"ports"`
	}
	_, err := c.sc.Post(ctx, c.sc.ServiceURL("ports"), body, &res, &gophercloud.RequestOpts{OkCodes: []int{201}})
	if err != nil {
		if isForbidden(err) && slices.ContainsFunc(rs, func(r PortRequest) bool { return r.Mode == ModeBindingProfile }) {
			return nil, wrap(err, "create %d ports: %s", len(rs), bindingProfileHint)
		}
		return nil, wrap(err, "create %d ports", len(rs))
	}
	out := make([]Port, 0, len(res.Ports))
	for _, rp := range res.Ports {
		p, err := rp.port()
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}

// GetPort reads a port. A missing port is ErrNotFound.
func (c *Client) GetPort(ctx context.Context, id string) (*Port, error) {
	var p rawPort
	if err := ports.Get(ctx, c.sc, id).ExtractInto(&p); err != nil {
		return nil, wrap(err, "get port %s", id)
	}
	return p.port()
}

// DeletePort deletes a port; one that is already gone is not an error.
func (c *Client) DeletePort(ctx context.Context, id string) error {
	err := ports.Delete(ctx, c.sc, id).ExtractErr()
	if err != nil && !isNotFound(err) {
		return wrap(err, "delete port %s", id)
	}
	return nil
}

// VMPorts lists the container ports ovn-docker made for the VM.
func (c *Client) VMPorts(ctx context.Context, vifID string) ([]Port, error) {
	return c.listPorts(ctx, ports.ListOpts{Description: Description(vifID)})
}

// PortsOnNetwork lists every port of the network the credentials see.
func (c *Client) PortsOnNetwork(ctx context.Context, networkID string) ([]Port, error) {
	return c.listPorts(ctx, ports.ListOpts{NetworkID: networkID})
}

// PortByAttachment finds the port of an attachment by its name, for a run that crashed
// before it recorded the port's ID. None is ErrNotFound.
func (c *Client) PortByAttachment(ctx context.Context, vifID, attachmentID string) (*Port, error) {
	ps, err := c.listPorts(ctx, ports.ListOpts{Name: PortName(attachmentID), Description: Description(vifID)})
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("port of attachment %s: %w", attachmentID, ErrNotFound)
	}
	return &ps[0], nil
}

// PortByMAC finds the port with that MAC address: how a VM finds its own vif-id.
func (c *Client) PortByMAC(ctx context.Context, mac net.HardwareAddr) (*Port, error) {
	ps, err := c.listPorts(ctx, ports.ListOpts{MACAddress: mac.String()})
	if err != nil {
		return nil, err
	}
	switch len(ps) {
	case 0:
		return nil, fmt.Errorf("no Neutron port with MAC %s visible to this project: %w", mac, ErrNotFound)
	case 1:
		return &ps[0], nil
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return nil, fmt.Errorf("%d Neutron ports have MAC %s (%v): give --vif-id", len(ps), mac, ids)
}

// SetTags replaces the port's tags (Neutron takes tags in a call of their own).
// SetDNSName gives a port its dns_name (a pool's port, taken by a container with a
// hostname).
func (c *Client) SetDNSName(ctx context.Context, portID, name string) error {
	_, err := ports.Update(ctx, c.sc, portID, dns.PortUpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{}, DNSName: &name}).Extract()
	if err != nil {
		return wrap(err, "set the dns_name of port %s", portID)
	}
	return nil
}

func (c *Client) SetTags(ctx context.Context, portID string, tags []string) error {
	return c.replaceTags(ctx, "ports", portID, tags, "tag port %s")
}

// replaceTags replaces the tags of a resource ("ports", "networks"), sorted; op names the
// call in an error.
func (c *Client) replaceTags(ctx context.Context, resource, id string, tags []string, op string) error {
	sorted := append([]string(nil), tags...)
	sort.Strings(sorted)
	_, err := attributestags.ReplaceAll(ctx, c.sc, resource, id, attributestags.ReplaceAllOpts{Tags: sorted}).Extract()
	if err != nil {
		return wrap(err, op, id)
	}
	return nil
}

func (c *Client) listPorts(ctx context.Context, opts ports.ListOpts) ([]Port, error) {
	pages, err := ports.List(c.sc, opts).AllPages(ctx)
	if err != nil {
		return nil, wrap(err, "list ports")
	}
	var raw []rawPort
	if err := ports.ExtractPortsInto(pages, &raw); err != nil {
		return nil, wrap(err, "list ports")
	}
	out := make([]Port, 0, len(raw))
	for _, r := range raw {
		p, err := r.port()
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}

type rawPort struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	NetworkID  string `json:"network_id"`
	MACAddress string `json:"mac_address"`
	FixedIPs   []struct {
		SubnetID  string `json:"subnet_id"`
		IPAddress string `json:"ip_address"`
	} `json:"fixed_ips"`
	Status         string   `json:"status"`
	AdminStateUp   *bool    `json:"admin_state_up"`
	Description    string   `json:"description"`
	DeviceOwner    string   `json:"device_owner"`
	DeviceID       string   `json:"device_id"`
	SecurityGroups []string `json:"security_groups"`
	Tags           []string `json:"tags"`
	ProjectID      string   `json:"project_id"`
	HostID         string   `json:"binding:host_id"`
}

func (r rawPort) port() (*Port, error) {
	mac, err := net.ParseMAC(r.MACAddress)
	if err != nil {
		return nil, fmt.Errorf("port %s: neutron gave MAC %q: %w", r.ID, r.MACAddress, err)
	}
	p := &Port{ID: r.ID, Name: r.Name, NetworkID: r.NetworkID, MAC: mac, Status: r.Status,
		Description: r.Description, DeviceOwner: r.DeviceOwner, DeviceID: r.DeviceID,
		SecurityGroups: r.SecurityGroups, Tags: r.Tags, ProjectID: r.ProjectID, HostID: r.HostID,
		AdminDown: r.AdminStateUp != nil && !*r.AdminStateUp}
	for _, f := range r.FixedIPs {
		ip, err := netip.ParseAddr(f.IPAddress)
		if err != nil {
			return nil, fmt.Errorf("port %s: neutron gave address %q: %w", r.ID, f.IPAddress, err)
		}
		p.FixedIPs = append(p.FixedIPs, FixedIP{SubnetID: f.SubnetID, IP: ip})
	}
	return p, nil
}
