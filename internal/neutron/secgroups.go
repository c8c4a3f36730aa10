package neutron

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
)

// SecurityGroupIDs resolves security groups given by name or ID to IDs, refusing
// unknown and ambiguous names.
func (c *Client) SecurityGroupIDs(ctx context.Context, namesOrIDs []string) ([]string, error) {
	if len(namesOrIDs) == 0 {
		return nil, nil
	}
	pages, err := groups.List(c.sc, groups.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, wrap(err, "list security groups")
	}
	all, err := groups.ExtractGroups(pages)
	if err != nil {
		return nil, wrap(err, "list security groups")
	}
	out := make([]string, 0, len(namesOrIDs))
	for _, want := range namesOrIDs {
		var match []string
		for _, g := range all {
			if g.ID == want {
				match = []string{g.ID}
				break
			}
			if g.Name == want {
				match = append(match, g.ID)
			}
		}
		switch len(match) {
		case 0:
			return nil, fmt.Errorf("security group %q: %w (or not visible to this project)", want, ErrNotFound)
		case 1:
			out = append(out, match[0])
		default:
			return nil, fmt.Errorf("security group name %q is %w: %d groups carry it (%v); use an ID", want, ErrAmbiguous, len(match), match)
		}
	}
	return out, nil
}
