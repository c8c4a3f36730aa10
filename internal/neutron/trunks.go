package neutron

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
)

// Trunk is the VM port's trunk and the VLANs of its subports.
type Trunk struct {
	ID       string
	ParentID string
	Subports map[string]int // port ID -> VLAN
}

// VLANs returns the VLANs in use on the trunk.
func (t *Trunk) VLANs() map[int]bool {
	used := make(map[int]bool, len(t.Subports))
	for _, v := range t.Subports {
		used[v] = true
	}
	return used
}

// EnsureTrunk returns the trunk whose parent is the VM's port, making the port a trunk
// parent if it is not one yet. A trunk made meanwhile by someone else is reused.
func (c *Client) EnsureTrunk(ctx context.Context, parentPortID string) (*Trunk, error) {
	if t, err := c.trunkOf(ctx, parentPortID); err != nil || t != nil {
		return t, err
	}
	tr, err := trunks.Create(ctx, c.sc, trunks.CreateOpts{PortID: parentPortID, Name: "ovn-docker-" + parentPortID,
		Description: "containers of the VM on port " + parentPortID}).Extract()
	if err == nil {
		return toTrunk(*tr), nil
	}
	if isConflict(err) {
		// Another process made it first.
		if t, err2 := c.trunkOf(ctx, parentPortID); err2 == nil && t != nil {
			return t, nil
		}
	}
	if isNotFound(err) {
		return nil, fmt.Errorf("make the VM's port %s a trunk: %w (the port does not exist or belongs to another project)", parentPortID, ErrNotFound)
	}
	return nil, wrap(err, "make the VM's port %s a trunk", parentPortID)
}

// TrunkOf returns the port's trunk, or nil when it has none.
func (c *Client) TrunkOf(ctx context.Context, parentPortID string) (*Trunk, error) {
	return c.trunkOf(ctx, parentPortID)
}

func (c *Client) trunkOf(ctx context.Context, parentPortID string) (*Trunk, error) {
	pages, err := trunks.List(c.sc, trunks.ListOpts{PortID: parentPortID}).AllPages(ctx)
	if err != nil {
		return nil, wrap(err, "find the trunk of port %s", parentPortID)
	}
	all, err := trunks.ExtractTrunks(pages)
	if err != nil {
		return nil, wrap(err, "find the trunk of port %s", parentPortID)
	}
	if len(all) == 0 {
		return nil, nil
	}
	return toTrunk(all[0]), nil
}

func toTrunk(t trunks.Trunk) *Trunk {
	out := &Trunk{ID: t.ID, ParentID: t.PortID, Subports: map[string]int{}}
	for _, s := range t.Subports {
		out.Subports[s.PortID] = s.SegmentationID
	}
	return out
}

// AddSubport makes the port a subport of the trunk with the VLAN. A VLAN the trunk
// already uses gives ErrVLANInUse. A port that is already the trunk's subport with that
// VLAN is not an error, so that a call whose answer was lost can be repeated.
func (c *Client) AddSubport(ctx context.Context, trunkID, portID string, vlan int) error {
	_, err := trunks.AddSubports(ctx, c.sc, trunkID, trunks.AddSubportsOpts{Subports: []trunks.Subport{{
		PortID: portID, SegmentationType: "vlan", SegmentationID: vlan,
	}}}).Extract()
	if err == nil {
		return nil
	}
	if isConflict(err) {
		// Neutron says "in use by another trunk" even when the trunk is this one.
		if tr, err2 := trunks.Get(ctx, c.sc, trunkID).Extract(); err2 == nil {
			if on, ok := toTrunk(*tr).Subports[portID]; ok {
				if on == vlan {
					return nil
				}
				return fmt.Errorf("add port %s to trunk %s with vlan %d: it is already the trunk's subport with vlan %d", portID, trunkID, vlan, on)
			}
		}
	}
	if isKind(err, ErrVLANInUse) {
		return fmt.Errorf("add port %s to trunk %s with vlan %d: %w", portID, trunkID, vlan, ErrVLANInUse)
	}
	return wrap(err, "add port %s to trunk %s with vlan %d", portID, trunkID, vlan)
}

// RemoveSubport takes the port off the trunk; a port that is not on it (or a trunk that
// is gone) is not an error.
func (c *Client) RemoveSubport(ctx context.Context, trunkID, portID string) error {
	_, err := trunks.RemoveSubports(ctx, c.sc, trunkID, trunks.RemoveSubportsOpts{Subports: []trunks.RemoveSubport{{PortID: portID}}}).Extract()
	if err == nil || isNotFound(err) {
		return nil
	}
	return wrap(err, "remove port %s from trunk %s", portID, trunkID)
}

// Subport is a port and its VLAN on a trunk.
type Subport struct {
	PortID string
	VLAN   int
}

// AddSubports adds several subports in one call: Neutron adds all or none. A VLAN the
// trunk already uses gives ErrVLANInUse.
func (c *Client) AddSubports(ctx context.Context, trunkID string, subs []Subport) error {
	if len(subs) == 0 {
		return nil
	}
	opts := trunks.AddSubportsOpts{}
	for _, s := range subs {
		opts.Subports = append(opts.Subports, trunks.Subport{PortID: s.PortID, SegmentationType: "vlan", SegmentationID: s.VLAN})
	}
	_, err := trunks.AddSubports(ctx, c.sc, trunkID, opts).Extract()
	if err == nil {
		return nil
	}
	if isKind(err, ErrVLANInUse) {
		return fmt.Errorf("add %d subports to trunk %s: %w", len(subs), trunkID, ErrVLANInUse)
	}
	return wrap(err, "add %d subports to trunk %s", len(subs), trunkID)
}

// RemoveSubports takes several ports off the trunk in one call: Neutron removes all or
// none. One port that is not on the trunk fails the whole call with ErrNotFound (unless
// it is the only one: then there is nothing to remove).
func (c *Client) RemoveSubports(ctx context.Context, trunkID string, portIDs []string) error {
	if len(portIDs) == 0 {
		return nil
	}
	opts := trunks.RemoveSubportsOpts{}
	for _, id := range portIDs {
		opts.Subports = append(opts.Subports, trunks.RemoveSubport{PortID: id})
	}
	_, err := trunks.RemoveSubports(ctx, c.sc, trunkID, opts).Extract()
	if err == nil || (isNotFound(err) && len(portIDs) == 1) {
		return nil
	}
	if isNotFound(err) {
		return fmt.Errorf("remove %d subports from trunk %s: %w", len(portIDs), trunkID, ErrNotFound)
	}
	return wrap(err, "remove %d subports from trunk %s", len(portIDs), trunkID)
}
