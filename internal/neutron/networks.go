package neutron

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/mtu"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/subnetpools"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// Network is a Neutron network with its subnets.
type Network struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	MTU       int      `json:"mtu"`
	Shared    bool     `json:"shared,omitempty"`
	ProjectID string   `json:"project_id,omitempty"`
	Subnets   []Subnet `json:"subnets"`
}

// Subnet is one subnet of a network.
type Subnet struct {
	ID        string       `json:"id"`
	CIDR      netip.Prefix `json:"cidr"`
	Gateway   netip.Addr   `json:"gateway,omitzero"`
	IPVersion int          `json:"ip_version"`
	DNS       []string     `json:"dns_nameservers,omitempty"`
	DHCP      bool         `json:"enable_dhcp"` // OVN answers DHCP for the subnet's ports
	// IPv6 only: how ports get addresses (slaac, dhcpv6-stateful, dhcpv6-stateless, or
	// "" for none: static) and what the router advertises. Neutron has already chosen
	// each port's address either way; these say what OVN answers on the subnet.
	IPv6AddressMode string `json:"ipv6_address_mode,omitempty"`
	IPv6RAMode      string `json:"ipv6_ra_mode,omitempty"`
	// Pools are the subnet's allocation pools: where Neutron picks addresses itself.
	Pools []PoolRange `json:"allocation_pools,omitempty"`
}

// CIDRs lists the network's subnets' prefixes.
func (n *Network) CIDRs() []string {
	out := make([]string, 0, len(n.Subnets))
	for _, s := range n.Subnets {
		out = append(out, s.CIDR.String())
	}
	return out
}

// FirstIPv4 returns the network's first IPv4 subnet.
func (n *Network) FirstIPv4() (Subnet, bool) {
	for _, s := range n.Subnets {
		if s.IPVersion == 4 {
			return s, true
		}
	}
	return Subnet{}, false
}

// SubnetByID returns the network's subnet of that ID.
func (n *Network) SubnetByID(id string) (Subnet, bool) {
	for _, s := range n.Subnets {
		if s.ID == id {
			return s, true
		}
	}
	return Subnet{}, false
}

type networkWithMTU struct {
	networks.Network
	mtu.NetworkMTUExt
}

// ListNetworks returns every network the credentials see, with subnets.
func (c *Client) ListNetworks(ctx context.Context) ([]Network, error) {
	var raw []networkWithMTU
	pages, err := networks.List(c.sc, networks.ListOpts{}).AllPages(ctx)
	if err == nil {
		err = networks.ExtractNetworksInto(pages, &raw)
	}
	if err != nil {
		return nil, wrap(err, "list networks")
	}
	subs, err := c.listSubnets(ctx, subnets.ListOpts{})
	if err != nil {
		return nil, err
	}
	out := make([]Network, 0, len(raw))
	for _, r := range raw {
		out = append(out, toNetwork(r, subs))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// FindNetwork resolves a network by ID or by name. A name that several networks carry
// is an error listing their IDs.
func (c *Client) FindNetwork(ctx context.Context, nameOrID string) (*Network, error) {
	if nameOrID == "" {
		return nil, errors.New("network name is empty")
	}
	var found []networkWithMTU
	if looksLikeUUID(nameOrID) {
		var n networkWithMTU
		err := networks.Get(ctx, c.sc, nameOrID).ExtractInto(&n)
		if err == nil {
			found = append(found, n)
		} else if !isNotFound(err) {
			return nil, wrap(err, "get network %s", nameOrID)
		}
	}
	if len(found) == 0 {
		pages, err := networks.List(c.sc, networks.ListOpts{Name: nameOrID}).AllPages(ctx)
		if err == nil {
			err = networks.ExtractNetworksInto(pages, &found)
		}
		if err != nil {
			return nil, wrap(err, "find network %q", nameOrID)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("network %q: %w (or not visible to this project)", nameOrID, ErrNotFound)
	case 1:
	default:
		ids := make([]string, len(found))
		for i, n := range found {
			ids[i] = n.ID
		}
		return nil, fmt.Errorf("network name %q is %w: %d networks carry it (%v); use an ID", nameOrID, ErrAmbiguous, len(found), ids)
	}
	subs, err := c.listSubnets(ctx, subnets.ListOpts{NetworkID: found[0].ID})
	if err != nil {
		return nil, err
	}
	n := toNetwork(found[0], subs)
	return &n, nil
}

// FindSubnetOpts names a subnet: by ID, or by Name when ID is empty.
type FindSubnetOpts struct {
	ID   string
	Name string
}

// SubnetRef is a subnet FindSubnet found: its ID and its network's.
type SubnetRef struct {
	ID        string
	NetworkID string
}

// FindSubnet finds a subnet by ID or, when o.ID is empty, by name. One that does not
// exist or is not visible to the project is ErrNotFound; a name several subnets carry is
// ErrAmbiguous, in an error that lists their IDs and ends there, so that the caller can
// say how its users pick one.
func (c *Client) FindSubnet(ctx context.Context, o FindSubnetOpts) (SubnetRef, error) {
	if o.ID != "" {
		s, err := subnets.Get(ctx, c.sc, o.ID).Extract()
		if isNotFound(err) {
			return SubnetRef{}, fmt.Errorf("subnet %s: %w (or not visible to this project)", o.ID, ErrNotFound)
		}
		if err != nil {
			return SubnetRef{}, wrap(err, "get subnet %s", o.ID)
		}
		return SubnetRef{ID: s.ID, NetworkID: s.NetworkID}, nil
	}
	pages, err := subnets.List(c.sc, subnets.ListOpts{Name: o.Name}).AllPages(ctx)
	if err != nil {
		return SubnetRef{}, wrap(err, "find subnet %q", o.Name)
	}
	all, err := subnets.ExtractSubnets(pages)
	if err != nil {
		return SubnetRef{}, wrap(err, "find subnet %q", o.Name)
	}
	switch len(all) {
	case 0:
		return SubnetRef{}, fmt.Errorf("subnet %q: %w (or not visible to this project)", o.Name, ErrNotFound)
	case 1:
		return SubnetRef{ID: all[0].ID, NetworkID: all[0].NetworkID}, nil
	}
	ids := make([]string, len(all))
	for i, s := range all {
		ids[i] = s.ID
	}
	sort.Strings(ids)
	return SubnetRef{}, fmt.Errorf("subnet name %q is %w: %d subnets carry it (%v)", o.Name, ErrAmbiguous, len(all), ids)
}

func (c *Client) listSubnets(ctx context.Context, opts subnets.ListOpts) ([]subnets.Subnet, error) {
	pages, err := subnets.List(c.sc, opts).AllPages(ctx)
	if err != nil {
		return nil, wrap(err, "list subnets")
	}
	all, err := subnets.ExtractSubnets(pages)
	if err != nil {
		return nil, wrap(err, "list subnets")
	}
	return all, nil
}

func toNetwork(r networkWithMTU, subs []subnets.Subnet) Network {
	n := Network{ID: r.ID, Name: r.Name, MTU: r.MTU, Shared: r.Shared, ProjectID: r.ProjectID}
	for _, s := range subs {
		if s.NetworkID != r.ID {
			continue
		}
		p, err := netip.ParsePrefix(s.CIDR)
		if err != nil {
			continue
		}
		sub := Subnet{ID: s.ID, CIDR: p, IPVersion: s.IPVersion, DNS: s.DNSNameservers, DHCP: s.EnableDHCP,
			IPv6AddressMode: s.IPv6AddressMode, IPv6RAMode: s.IPv6RAMode}
		if gw, err := netip.ParseAddr(s.GatewayIP); err == nil {
			sub.Gateway = gw
		}
		sub.Pools = poolRanges(s.AllocationPools)
		n.Subnets = append(n.Subnets, sub)
	}
	sort.Slice(n.Subnets, func(i, j int) bool { return n.Subnets[i].IPVersion < n.Subnets[j].IPVersion })
	return n
}

// CreateNetworkOpts describes a network to create. With no IPv4 subnet given, the
// project's default IPv4 subnet pool is used when there is one, otherwise a free private
// /24 that overlaps none of the project's subnets.
type CreateNetworkOpts struct {
	Name    string
	Subnet  netip.Prefix // optional
	Gateway netip.Addr   // optional; default: first host of Subnet
	IPv6    netip.Prefix // optional
	// Gateway6 is IPv6's gateway; default: Neutron's (the subnet-router address).
	Gateway6 netip.Addr
	// NoIPv4 makes an IPv6-only network: no IPv4 subnet at all. It needs IPv6.
	NoIPv4 bool
	// IPv6AddressMode and IPv6RAMode are Neutron's subnet attributes; see IPv6Modes.
	IPv6AddressMode, IPv6RAMode string
	// NoDHCP turns DHCP (and DHCPv6) off on every subnet.
	NoDHCP bool
	// PrefixLen is the size of a subnet chosen for the caller (no Subnet given): 24 when 0.
	PrefixLen int
	// SubnetPool and SubnetPool6 (name or ID) give the IPv4 and IPv6 subnets from a
	// Neutron subnet pool, of PrefixLen and PrefixLen6 bits (the pool's default when 0).
	SubnetPool, SubnetPool6 string
	PrefixLen6              int
}

// CreateNetwork creates a network and its subnet(s). It returns the network and a
// sentence saying where the IPv4 range came from. On failure it deletes what it made.
func (c *Client) CreateNetwork(ctx context.Context, o CreateNetworkOpts) (_ *Network, note string, err error) {
	if err := ValidateNetworkName(o.Name); err != nil {
		return nil, "", err
	}
	if o.Subnet.IsValid() {
		if err := checkSubnet(o.Subnet, 4); err != nil {
			return nil, "", err
		}
		// Neutron refuses the network and broadcast addresses only after the network exists.
		if o.Gateway.IsValid() && (!o.Subnet.Contains(o.Gateway) || o.Gateway == o.Subnet.Masked().Addr() || o.Gateway == lastAddr(o.Subnet)) {
			return nil, "", fmt.Errorf("gateway %s is not a host address of subnet %s", o.Gateway, o.Subnet)
		}
	} else if o.Gateway.IsValid() {
		return nil, "", errors.New("--gateway needs --subnet")
	}
	if o.NoIPv4 && (o.Subnet.IsValid() || o.Gateway.IsValid()) {
		return nil, "", errors.New("--ipv4=false makes an IPv6-only network: drop --subnet and --gateway")
	}
	if err := checkPools(o); err != nil {
		return nil, "", err
	}
	if o.NoIPv4 && !o.IPv6.IsValid() && o.SubnetPool6 == "" {
		return nil, "", errors.New("--ipv4=false needs --ipv6-subnet")
	}
	addrMode, raMode, err := IPv6Modes(o.IPv6AddressMode, o.IPv6RAMode, !o.NoDHCP)
	if err != nil {
		return nil, "", err
	}
	if o.IPv6.IsValid() {
		if err := checkSubnet(o.IPv6, 6); err != nil {
			return nil, "", err
		}
		if (addrMode == "slaac" || addrMode == "dhcpv6-stateless") && o.IPv6.Bits() != 64 {
			return nil, "", fmt.Errorf("--ipv6-address-mode %s needs a /64, not %s", addrMode, o.IPv6)
		}
	} else if (o.IPv6AddressMode != "" || o.IPv6RAMode != "") && o.SubnetPool6 == "" {
		return nil, "", errors.New("--ipv6-address-mode and --ipv6-ra-mode need --ipv6-subnet")
	}
	// Refuse a second network of the same name: names are how users pick networks.
	if _, err := c.FindNetwork(ctx, o.Name); err == nil {
		return nil, "", fmt.Errorf("network %q already exists", o.Name)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, "", err
	}

	// The pools are found before anything is made: a missing one is one line.
	var pool4, pool6 *SubnetPool
	if o.SubnetPool != "" {
		if pool4, err = c.FindSubnetPool(ctx, o.SubnetPool, 4); err != nil {
			return nil, "", err
		}
	}
	if o.SubnetPool6 != "" {
		if pool6, err = c.FindSubnetPool(ctx, o.SubnetPool6, 6); err != nil {
			return nil, "", err
		}
	}

	dhcp := ptr(!o.NoDHCP)
	sub := subnets.CreateOpts{Name: o.Name + "-v4", IPVersion: gophercloud.IPv4, EnableDHCP: dhcp}
	switch {
	case o.NoIPv4:
		note = "IPv6 only"
	case o.Subnet.IsValid():
		sub.CIDR = o.Subnet.Masked().String()
		if o.Gateway.IsValid() {
			sub.GatewayIP = ptr(o.Gateway.String())
		}
		note = "subnet " + sub.CIDR + " as asked"
	case pool4 != nil:
		sub.SubnetPoolID, sub.Prefixlen = pool4.ID, o.PrefixLen
		note = fmt.Sprintf("subnet from subnet pool %q", pool4.Name)
	default:
		pool, err := c.defaultPool(ctx)
		if err != nil {
			return nil, "", err
		}
		if pool != nil {
			sub.SubnetPoolID = pool.ID
			note = fmt.Sprintf("subnet from the project's default subnet pool %q", pool.Name)
		} else {
			bits := o.PrefixLen
			if bits == 0 {
				bits = 24
			}
			free, err := c.freePrivate(ctx, bits)
			if err != nil {
				return nil, "", err
			}
			sub.CIDR = free.String()
			note = fmt.Sprintf("subnet %s, a free private /%d (no --subnet given and no default subnet pool)", free, bits)
		}
	}

	var raw networkWithMTU
	if err := networks.Create(ctx, c.sc, networks.CreateOpts{Name: o.Name}).ExtractInto(&raw); err != nil {
		return nil, "", wrap(err, "create network %q", o.Name)
	}
	defer func() {
		if err != nil {
			// Deleting the network deletes its subnets too.
			_ = networks.Delete(context.WithoutCancel(ctx), c.sc, raw.ID).ExtractErr()
		}
	}()
	var created []subnets.Subnet
	if !o.NoIPv4 {
		sub.NetworkID = raw.ID
		s4, err := subnets.Create(ctx, c.sc, sub).Extract()
		if err != nil {
			return nil, "", wrap(err, "create subnet of network %q", o.Name)
		}
		created = append(created, *s4)
	}
	if o.IPv6.IsValid() || pool6 != nil {
		opts6 := subnets.CreateOpts{
			NetworkID: raw.ID, Name: o.Name + "-v6", IPVersion: gophercloud.IPv6,
			IPv6AddressMode: addrMode, IPv6RAMode: raMode, EnableDHCP: dhcp, GatewayIP: gateway6(o),
		}
		if pool6 != nil {
			opts6.SubnetPoolID, opts6.Prefixlen = pool6.ID, o.PrefixLen6
		} else {
			opts6.CIDR = o.IPv6.Masked().String()
		}
		s6, err := subnets.Create(ctx, c.sc, opts6).Extract()
		if err != nil {
			return nil, "", wrap(err, "create IPv6 subnet of network %q", o.Name)
		}
		created = append(created, *s6)
	}
	n := toNetwork(raw, created)
	if !o.Subnet.IsValid() && len(n.Subnets) > 0 && sub.SubnetPoolID != "" {
		note += ": " + n.Subnets[0].CIDR.String()
	}
	if o.IPv6.IsValid() {
		note += fmt.Sprintf(", IPv6 subnet %s (%s)", o.IPv6.Masked(), ModeText(addrMode))
	} else if pool6 != nil && len(created) > 0 {
		note += fmt.Sprintf(", IPv6 subnet %s from subnet pool %q (%s)", created[len(created)-1].CIDR, pool6.Name, ModeText(addrMode))
	}
	if o.NoDHCP {
		note += ", DHCP off"
	}
	return &n, note, nil
}

// DeleteNetwork deletes a network (and its subnets). A missing network is ErrNotFound.
func (c *Client) DeleteNetwork(ctx context.Context, id string) error {
	err := networks.Delete(ctx, c.sc, id).ExtractErr()
	if err != nil {
		return wrap(err, "delete network %s", id)
	}
	return nil
}

// RenameNetwork gives a network a new name.
func (c *Client) RenameNetwork(ctx context.Context, id, name string) error {
	if _, err := networks.Update(ctx, c.sc, id, networks.UpdateOpts{Name: &name}).Extract(); err != nil {
		return wrap(err, "rename network %s to %q", id, name)
	}
	return nil
}

// SetNetworkTags replaces a network's tags.
func (c *Client) SetNetworkTags(ctx context.Context, id string, tags []string) error {
	return c.replaceTags(ctx, "networks", id, tags, "tag network %s")
}

func (c *Client) defaultPool(ctx context.Context) (*subnetpools.SubnetPool, error) {
	pages, err := subnetpools.List(c.sc, subnetpools.ListOpts{IsDefault: ptr(true)}).AllPages(ctx)
	if err != nil {
		return nil, wrap(err, "list subnet pools")
	}
	pools, err := subnetpools.ExtractSubnetPools(pages)
	if err != nil {
		return nil, wrap(err, "list subnet pools")
	}
	for i := range pools {
		if pools[i].IPversion == 4 && pools[i].IsDefault {
			return &pools[i], nil
		}
	}
	return nil, nil
}

// freePrivate picks the first /bits of 10.0.0.0/8 (from 10.10.0.0 on, clear of the
// ranges people use by hand) that overlaps none of the subnets the project sees.
func (c *Client) freePrivate(ctx context.Context, bits int) (netip.Prefix, error) {
	subs, err := c.listSubnets(ctx, subnets.ListOpts{IPVersion: 4})
	if err != nil {
		return netip.Prefix{}, err
	}
	var used []netip.Prefix
	for _, s := range subs {
		if p, err := netip.ParsePrefix(s.CIDR); err == nil {
			used = append(used, p.Masked())
		}
	}
	return FreePrefix(netip.MustParsePrefix("10.0.0.0/8"), bits, netip.MustParseAddr("10.10.0.0"), used)
}

// FreePrefix returns the first prefix of the given length inside space, at or after
// start, that overlaps none of used.
func FreePrefix(space netip.Prefix, bits int, start netip.Addr, used []netip.Prefix) (netip.Prefix, error) {
	cand := netip.PrefixFrom(start, bits).Masked()
	for space.Contains(cand.Addr()) {
		clash := false
		for _, u := range used {
			if u.Overlaps(cand) {
				clash = true
				break
			}
		}
		if !clash {
			return cand, nil
		}
		next, ok := nextPrefix(cand)
		if !ok {
			break
		}
		cand = next
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d left in %s: give --subnet", bits, space)
}

func nextPrefix(p netip.Prefix) (netip.Prefix, bool) {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	step := uint32(1) << (32 - p.Bits())
	if v+step < v {
		return netip.Prefix{}, false
	}
	v += step
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), p.Bits()), true
}

// lastAddr is the last address of an IPv4 prefix: its broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= uint32(1)<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func checkSubnet(p netip.Prefix, family int) error {
	if family == 4 && !p.Addr().Is4() {
		return fmt.Errorf("subnet %s is not IPv4", p)
	}
	if family == 6 && (!p.Addr().Is6() || p.Addr().Is4In6()) {
		return fmt.Errorf("subnet %s is not IPv6", p)
	}
	if family == 4 && p.Bits() > 29 {
		return fmt.Errorf("subnet %s is too small: a network needs at least a /29", p)
	}
	if family == 4 && p.Bits() < 8 {
		return fmt.Errorf("subnet %s is too large", p)
	}
	if family == 6 && p.Bits() > 120 {
		return fmt.Errorf("subnet %s is too small", p)
	}
	if p.Addr().IsMulticast() || p.Addr().IsLoopback() || p.Addr().IsUnspecified() {
		return fmt.Errorf("subnet %s is not a unicast range", p)
	}
	return nil
}

// ValidateNetworkName checks a name given for a new network: printable, at most 255
// characters, and not something that would be mistaken for an ID.
func ValidateNetworkName(name string) error {
	switch {
	case name == "":
		return errors.New("network name is empty")
	case len(name) > 255:
		return fmt.Errorf("network name is %d characters long, at most 255", len(name))
	case looksLikeUUID(name):
		return fmt.Errorf("network name %q looks like an ID: choose another name", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("network name %q has a control character", name)
		}
	}
	return nil
}

func looksLikeUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
				return false
			}
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }

// gateway6 is the IPv6 subnet's gateway_ip to send: nil leaves Neutron's default.
func gateway6(o CreateNetworkOpts) *string {
	if !o.Gateway6.IsValid() {
		return nil
	}
	return ptr(o.Gateway6.String())
}
