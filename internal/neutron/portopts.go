package neutron

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/common/extensions"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/dns"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsecurity"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/qos/policies"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
)

// PortOptions are what a user may ask of a container's port beyond its network and
// security groups. The zero value asks for nothing: Neutron's defaults.
type PortOptions struct {
	// AllowedAddresses become the port's allowed_address_pairs: OVN's port security then
	// lets the container send from (and receive for) these addresses too.
	AllowedAddresses []AddressPair `json:"allowed_addresses,omitempty"`
	QoSPolicyID      string        `json:"qos_policy_id,omitempty"` // an ID (QoSPolicyID resolves names)
	// DNSName is the port's dns_name, a DNS label; the caller sets it only where Neutron
	// has DNS integration (HasExtension(ExtDNSIntegration)).
	DNSName string `json:"dns_name,omitempty"`
	// NoPortSecurity turns the port's port security off, and so its security groups.
	NoPortSecurity bool `json:"no_port_security,omitempty"`
}

// OwnPort says the options need a port made for the request: allowed addresses, a QoS
// policy and port security are a port's from its creation on (a pool's have Neutron's
// defaults). A dns_name is not among them: a pool's port is given it afterwards
// (SetDNSName), off the critical path, since nothing on the data path waits for it.
func (o PortOptions) OwnPort() bool {
	return len(o.AllowedAddresses) > 0 || o.QoSPolicyID != "" || o.NoPortSecurity
}

// Empty says the options ask for nothing.
func (o PortOptions) Empty() bool {
	return len(o.AllowedAddresses) == 0 && o.QoSPolicyID == "" && o.DNSName == "" && !o.NoPortSecurity
}

// AddressPair is one allowed address pair: an address or a CIDR, and optionally a MAC
// (none: the port's own).
type AddressPair struct {
	IP  string `json:"ip_address"`
	MAC string `json:"mac_address,omitempty"`
}

// ParseAddressPair reads IP[/MAC] or CIDR[/MAC] ("10.0.0.50", "10.0.0.0/24",
// "10.0.0.50/fa:16:3e:00:00:01", "fd00::50/fa:16:3e:00:00:01"): what follows the last
// slash is a MAC when it parses as one, else a prefix length.
func ParseAddressPair(s string) (AddressPair, error) {
	addr, mac := s, ""
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		if hw, err := net.ParseMAC(s[i+1:]); err == nil && len(hw) == 6 {
			addr, mac = s[:i], hw.String()
		}
	}
	if p, err := netip.ParsePrefix(addr); err == nil {
		if p != p.Masked() {
			return AddressPair{}, fmt.Errorf("allowed address %q: %s is not a network address (use %s, or an address without a prefix)", s, p, p.Masked())
		}
		return AddressPair{IP: p.String(), MAC: mac}, nil
	}
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		return AddressPair{}, fmt.Errorf("allowed address %q: want IP, IP/MAC, CIDR or CIDR/MAC", s)
	}
	return AddressPair{IP: a.String(), MAC: mac}, nil
}

// apply adds the options to a port's create request. Each is an extension of Neutron's
// API, which gophercloud models as a wrapper of the request.
func (o PortOptions) apply(base ports.CreateOpts) ports.CreateOptsBuilder {
	for _, p := range o.AllowedAddresses {
		base.AllowedAddressPairs = append(base.AllowedAddressPairs, ports.AddressPair{IPAddress: p.IP, MACAddress: p.MAC})
	}
	if o.NoPortSecurity {
		// Neutron refuses a port without port security that has groups, and gives the
		// project's default group unless told none.
		base.SecurityGroups = &[]string{}
	}
	var b ports.CreateOptsBuilder = base
	if o.NoPortSecurity {
		off := false
		b = portsecurity.PortCreateOptsExt{CreateOptsBuilder: b, PortSecurityEnabled: &off}
	}
	if o.QoSPolicyID != "" {
		b = policies.PortCreateOptsExt{CreateOptsBuilder: b, QoSPolicyID: o.QoSPolicyID}
	}
	if o.DNSName != "" {
		b = dns.PortCreateOptsExt{CreateOptsBuilder: b, DNSName: o.DNSName}
	}
	return b
}

// check refuses options that cannot go together, before Neutron is asked.
func (o PortOptions) check(securityGroups []string) error {
	if o.NoPortSecurity && len(securityGroups) > 0 {
		return errors.New("a port without port security has no security groups: give --no-port-security or --security-group, not both")
	}
	if o.NoPortSecurity && len(o.AllowedAddresses) > 0 {
		return errors.New("allowed addresses need port security: without it the port may use any address already")
	}
	return nil
}

// portOptionsHint explains a 403 on a port with options: the policy rule Neutron names
// is the only clue in its own message.
func portOptionsHint(o PortOptions) string {
	switch {
	case o.NoPortSecurity:
		return "Neutron's policy lets only the network's owner (or admin) turn port security off"
	case len(o.AllowedAddresses) > 0:
		return "Neutron's policy refused the allowed address pairs"
	}
	return "Neutron's policy refused the port's options"
}

// Extensions of Neutron's API that ovn-docker looks for.
const (
	ExtDNSIntegration = "dns-integration" // a port's dns_name
	ExtQoS            = "qos"
)

// extCache remembers which extensions Neutron has: asked once per client.
type extCache struct {
	mu  sync.Mutex
	has map[string]bool
}

// HasExtension says whether Neutron has the API extension alias, asking it once per
// client.
func (c *Client) HasExtension(ctx context.Context, alias string) (bool, error) {
	ec := &c.exts
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if has, ok := ec.has[alias]; ok {
		return has, nil
	}
	_, err := extensions.Get(ctx, c.sc, alias).Extract()
	switch {
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		ec.has[alias] = false
	case err != nil:
		return false, wrap(err, "ask Neutron for its %s extension", alias)
	default:
		ec.has[alias] = true
	}
	return ec.has[alias], nil
}

// QoSPolicyID resolves a QoS policy given by name or ID (the project's own or a shared
// one) to its ID, refusing unknown and ambiguous names.
func (c *Client) QoSPolicyID(ctx context.Context, nameOrID string) (string, error) {
	pages, err := policies.List(c.sc, policies.ListOpts{}).AllPages(ctx)
	if err != nil {
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return "", fmt.Errorf("qos policy %q: Neutron has no QoS extension (ask the cloud's operator for the qos service plugin)", nameOrID)
		}
		return "", wrap(err, "list qos policies")
	}
	all, err := policies.ExtractPolicies(pages)
	if err != nil {
		return "", wrap(err, "list qos policies")
	}
	var match []string
	for _, p := range all {
		if p.ID == nameOrID {
			return p.ID, nil
		}
		if p.Name == nameOrID {
			match = append(match, p.ID)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("qos policy %q: %w (or not visible to this project)", nameOrID, ErrNotFound)
	case 1:
		return match[0], nil
	}
	return "", fmt.Errorf("qos policy name %q is %w: %d policies carry it (%v); use an ID", nameOrID, ErrAmbiguous, len(match), match)
}

// DNSLabel makes a hostname a valid DNS label for a port's dns_name: its first label,
// lower case, with any character but letters, digits and '-' made '-', without leading
// or trailing '-', at most 63 characters. "" when nothing is left.
func DNSLabel(hostname string) string {
	h, _, _ := strings.Cut(hostname, ".")
	b := make([]byte, 0, len(h))
	for _, r := range strings.ToLower(h) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b = append(b, byte(r))
		default:
			b = append(b, '-')
		}
	}
	s := strings.Trim(string(b), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}
