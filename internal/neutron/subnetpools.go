package neutron

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/subnetpools"
)

// SubnetPool is a Neutron subnet pool a new network's subnet can be taken from.
type SubnetPool struct {
	ID, Name  string
	IPVersion int
	// DefaultPrefixLen is the size Neutron gives a subnet when no prefix length is asked.
	DefaultPrefixLen int
}

// FindSubnetPool finds a subnet pool of one IP version by name or ID, among those the
// project sees (its own and shared ones). A missing one is ErrNotFound.
func (c *Client) FindSubnetPool(ctx context.Context, nameOrID string, version int) (*SubnetPool, error) {
	var found []subnetpools.SubnetPool
	for _, o := range []subnetpools.ListOpts{{ID: nameOrID, IPVersion: version}, {Name: nameOrID, IPVersion: version}} {
		if o.ID != "" && !looksLikeUUID(nameOrID) {
			continue
		}
		pages, err := subnetpools.List(c.sc, o).AllPages(ctx)
		if err != nil {
			return nil, wrap(err, "find subnet pool %q", nameOrID)
		}
		if found, err = subnetpools.ExtractSubnetPools(pages); err != nil {
			return nil, wrap(err, "find subnet pool %q", nameOrID)
		}
		if len(found) > 0 {
			break
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("IPv%d subnet pool %q: %w (or not shared with this project)", version, nameOrID, ErrNotFound)
	case 1:
		p := found[0]
		return &SubnetPool{ID: p.ID, Name: p.Name, IPVersion: p.IPversion, DefaultPrefixLen: p.DefaultPrefixLen}, nil
	}
	ids := make([]string, len(found))
	for i, p := range found {
		ids[i] = p.ID
	}
	return nil, fmt.Errorf("%d IPv%d subnet pools are named %q (%s): give its ID", len(found), version, nameOrID, strings.Join(ids, ", "))
}

// checkPools refuses a subnet pool together with what it replaces, and prefix lengths
// without a pool, before anything is made.
func checkPools(o CreateNetworkOpts) error {
	switch {
	case o.SubnetPool != "" && o.Subnet.IsValid():
		return errors.New("give --subnet or --subnet-pool, not both")
	case o.SubnetPool != "" && o.NoIPv4:
		return errors.New("--ipv4=false makes an IPv6-only network: drop --subnet-pool (--ipv6-subnet-pool gives the IPv6 subnet)")
	case o.SubnetPool6 != "" && o.IPv6.IsValid():
		return errors.New("give --ipv6-subnet or --ipv6-subnet-pool, not both")
	case o.PrefixLen6 != 0 && o.SubnetPool6 == "":
		return errors.New("--ipv6-prefix-length needs --ipv6-subnet-pool")
	case o.PrefixLen < 0 || o.PrefixLen > 32 || o.PrefixLen6 < 0 || o.PrefixLen6 > 128:
		return fmt.Errorf("prefix length out of range (IPv4 1-32, IPv6 1-128)")
	}
	return nil
}
