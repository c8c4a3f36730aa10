package ovs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/ovsdb/vswitch"
)

// rollbackTimeout bounds undoing a failed AddAccessPort, which runs even when the
// caller's context has already ended.
const rollbackTimeout = 15 * time.Second

// maxIfNameLen is the longest Linux interface name (IFNAMSIZ - 1).
const maxIfNameLen = 15

// AccessPort is an OVS port carrying one VLAN untagged to a local device.
type AccessPort struct {
	Bridge      string
	Name        string // the device (veth end) in ovs-vswitchd's network namespace
	Tag         int    // VLAN, 1..4094
	ExternalIDs map[string]string
}

// PortInfo describes one port of a bridge.
type PortInfo struct {
	Name        string
	Tag         int // 0 = none
	Trunks      []int
	ExternalIDs map[string]string
	OFPort      int    // -1 when ovs-vswitchd could not add it, 0 while unknown
	Error       string // Interface.error as reported by ovs-vswitchd
}

// validate checks what the database schema would not catch, or would catch with a
// less helpful message.
func (p AccessPort) validate() error {
	if p.Bridge == "" {
		return errors.New("access port: bridge name is empty")
	}
	if err := checkIfName(p.Name); err != nil {
		return fmt.Errorf("access port: %w", err)
	}
	if p.Tag < 1 || p.Tag > 4094 {
		return fmt.Errorf("access port %s: tag %d out of range 1..4094", p.Name, p.Tag)
	}
	return nil
}

// checkIfName applies the kernel's rules for device names, since the port must name
// an existing device.
func checkIfName(name string) error {
	switch {
	case name == "":
		return errors.New("port name is empty")
	case len(name) > maxIfNameLen:
		return fmt.Errorf("port name %q longer than %d bytes", name, maxIfNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("invalid port name %q", name)
	case strings.ContainsAny(name, "/: \t\n\r\v\f"):
		return fmt.Errorf("invalid port name %q: contains '/', ':' or white space", name)
	}
	return nil
}

// AddAccessPort adds device p.Name to bridge p.Bridge as an access port for VLAN p.Tag
// and returns once ovs-vswitchd has opened the device. If ovs-vswitchd cannot use the
// device, the port is removed again and the error quotes ovs-vswitchd. Adding a port
// that is already there with the same tag only refreshes its external_ids.
func (c *Client) AddAccessPort(ctx context.Context, p AccessPort) error {
	if err := p.validate(); err != nil {
		return err
	}
	// mayExist: a transaction of this call that inserts the port may have committed;
	// from then on a failure must remove the port again.
	var mayExist bool
	err := c.do(ctx, func(cn *conn) error { return c.addAccessPort(ctx, cn, p, &mayExist) })
	if err == nil {
		return nil
	}
	if mayExist {
		if rbErr := c.rollbackAdd(ctx, p); rbErr != nil {
			return fmt.Errorf("%w (rollback failed, port %s may be left on bridge %s: %v)", err, p.Name, p.Bridge, rbErr)
		}
	}
	return err
}

func (c *Client) addAccessPort(ctx context.Context, cn *conn, p AccessPort, mayExist *bool) error {
	// Looking first tells a port that was there before this call (never to be rolled
	// back) from one our insert may have created before an ambiguous failure.
	l, err := cn.lookup(ctx, p.Name)
	if err != nil {
		return err
	}
	if l.found {
		return c.reuseExisting(ctx, cn, p, l)
	}
	root, err := cn.rootUUID(c.endpoint)
	if err != nil {
		return err
	}
	ops := addPortOps(p, root)
	res, err := cn.ovs.Transact(ctx, ops...)
	if err != nil {
		// No answer: the server may or may not have committed it.
		*mayExist = true
		return fmt.Errorf("add port %s to bridge %s: %w", p.Name, p.Bridge, err)
	}
	if txnErr := txnError(res, ops); txnErr != nil {
		if !isConstraintViolation(txnErr) {
			return fmt.Errorf("add port %s to bridge %s: %w", p.Name, p.Bridge, txnErr)
		}
		// The name is taken: by a port created since the lookup, or by an interface
		// of some other port.
		if l, err = cn.lookup(ctx, p.Name); err != nil {
			return err
		}
		if !l.found {
			return fmt.Errorf("add port %s to bridge %s: an interface of that name belongs to another port: %w", p.Name, p.Bridge, txnErr)
		}
		return c.reuseExisting(ctx, cn, p, l)
	}
	if res[addOpBridge].Count == 0 {
		return fmt.Errorf("bridge %s not found in %s", p.Bridge, c.endpoint)
	}
	*mayExist = true
	want, err := nextCfg(res[addOpNextCfg])
	if err != nil {
		return err
	}
	return c.confirm(ctx, cn, p, res[addOpIface].UUID.GoUUID, want)
}

// reuseExisting handles a port of that name that is already there: the same port
// (bridge and tag) counts as success, anything else is an error naming the owner.
func (c *Client) reuseExisting(ctx context.Context, cn *conn, p AccessPort, l portLookup) error {
	switch {
	case l.bridge != p.Bridge:
		return fmt.Errorf("add port %s to bridge %s: port already exists on bridge %s", p.Name, p.Bridge, l.bridge)
	case l.tag != p.Tag:
		return fmt.Errorf("add port %s to bridge %s: port already exists with tag %d, not %d", p.Name, p.Bridge, l.tag, p.Tag)
	case l.ifaceUUID == "":
		return fmt.Errorf("add port %s to bridge %s: existing port has no interface named %s", p.Name, p.Bridge, p.Name)
	}
	root, err := cn.rootUUID(c.endpoint)
	if err != nil {
		return err
	}
	ops := updateExternalIDsOps(l.uuid, l.ifaceUUID, p.ExternalIDs, root)
	res, err := cn.ovs.Transact(ctx, ops...)
	if err != nil {
		return fmt.Errorf("update port %s: %w", p.Name, err)
	}
	if err := txnError(res, ops); err != nil {
		return fmt.Errorf("update port %s: %w", p.Name, err)
	}
	want, err := nextCfg(res[len(res)-1])
	if err != nil {
		return err
	}
	return c.confirm(ctx, cn, p, l.ifaceUUID, want)
}

// confirm waits until ovs-vswitchd has applied configuration want and then checks
// that it could open the port's device.
func (c *Client) confirm(ctx context.Context, cn *conn, p AccessPort, ifaceUUID string, want int) error {
	if c.onWait != nil {
		c.onWait("ovs-vswitchd")
	}
	if err := cn.waitCfg(ctx, want); err != nil {
		return fmt.Errorf("wait for ovs-vswitchd to add port %s: %w", p.Name, err)
	}
	var iface *vswitch.Interface
	err := cn.waitFor(ctx, func() (bool, error) {
		m := cn.cache.Table(vswitch.InterfaceTable).Row(ifaceUUID)
		if m == nil {
			return false, nil
		}
		iface = m.(*vswitch.Interface)
		return iface.Ofport != nil || (iface.Error != nil && *iface.Error != ""), nil
	})
	if err != nil {
		return fmt.Errorf("wait for ovs-vswitchd to open port %s: %w", p.Name, err)
	}
	if iface.Error != nil && *iface.Error != "" {
		return fmt.Errorf("ovs-vswitchd could not add port %s to bridge %s: %s", p.Name, p.Bridge, *iface.Error)
	}
	if *iface.Ofport < 0 {
		return fmt.Errorf("ovs-vswitchd could not add port %s to bridge %s: no OpenFlow port assigned", p.Name, p.Bridge)
	}
	return nil
}

// rollbackAdd removes the port a failed AddAccessPort may have left, on a context of
// its own because the caller's may be what ended. Only a port that matches p (same
// bridge and tag) is removed, so a port someone else owns is never touched.
func (c *Client) rollbackAdd(ctx context.Context, p AccessPort) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	return c.do(ctx, func(cn *conn) error {
		l, err := cn.lookup(ctx, p.Name)
		if err != nil {
			return err
		}
		if !l.found || l.bridge != p.Bridge || l.tag != p.Tag {
			return nil
		}
		// No wait for ovs-vswitchd here: it may be the component that is not answering.
		_, err = c.removePort(ctx, cn, p.Bridge, p.Name, l.uuid)
		return err
	})
}

// DeletePort removes port name from bridge and waits for ovs-vswitchd to let go of
// the device. A port that does not exist is not an error; a port of that name on
// another bridge is.
func (c *Client) DeletePort(ctx context.Context, bridge, name string) error {
	if bridge == "" {
		return errors.New("delete port: bridge name is empty")
	}
	if name == "" {
		return errors.New("delete port: port name is empty")
	}
	return c.do(ctx, func(cn *conn) error {
		l, err := cn.lookup(ctx, name)
		if err != nil {
			return err
		}
		if !l.found {
			return nil
		}
		if l.bridge != bridge {
			return fmt.Errorf("delete port %s: it is on bridge %s, not %s", name, l.bridge, bridge)
		}
		want, err := c.removePort(ctx, cn, bridge, name, l.uuid)
		if err != nil {
			return err
		}
		if err := cn.waitCfg(ctx, want); err != nil {
			return fmt.Errorf("wait for ovs-vswitchd to remove port %s: %w", name, err)
		}
		return nil
	})
}

// removePort detaches port portUUID from bridge and returns the next_cfg to wait for.
func (c *Client) removePort(ctx context.Context, cn *conn, bridge, name, portUUID string) (int, error) {
	root, err := cn.rootUUID(c.endpoint)
	if err != nil {
		return 0, err
	}
	ops := removePortOps(bridge, portUUID, root)
	res, err := cn.ovs.Transact(ctx, ops...)
	if err != nil {
		return 0, fmt.Errorf("delete port %s from bridge %s: %w", name, bridge, err)
	}
	if err := txnError(res, ops); err != nil {
		return 0, fmt.Errorf("delete port %s from bridge %s: %w", name, bridge, err)
	}
	return nextCfg(res[len(res)-1])
}

// Ports lists the ports of bridge, sorted by name, as this client's monitor sees
// them (changes made by other processes show up within milliseconds).
func (c *Client) Ports(ctx context.Context, bridge string) ([]PortInfo, error) {
	var out []PortInfo
	err := c.do(ctx, func(cn *conn) error {
		var err error
		out, err = cn.ports(bridge, c.endpoint)
		return err
	})
	return out, err
}

// UsedTags returns the VLANs that ports of bridge carry, as access tag or as trunk.
func (c *Client) UsedTags(ctx context.Context, bridge string) (map[int]bool, error) {
	ports, err := c.Ports(ctx, bridge)
	if err != nil {
		return nil, err
	}
	return usedTags(ports), nil
}

func usedTags(ports []PortInfo) map[int]bool {
	used := make(map[int]bool)
	for _, p := range ports {
		if p.Tag > 0 {
			used[p.Tag] = true
		}
		for _, t := range p.Trunks {
			if t > 0 {
				used[t] = true
			}
		}
	}
	return used
}

func (cn *conn) ports(bridge, endpoint string) ([]PortInfo, error) {
	var br *vswitch.Bridge
	for _, m := range cn.cache.Table(vswitch.BridgeTable).RowsShallow() {
		if b := m.(*vswitch.Bridge); b.Name == bridge {
			br = b
			break
		}
	}
	if br == nil {
		return nil, fmt.Errorf("bridge %s not found in %s", bridge, endpoint)
	}
	// Read-only views of the cache: Row would deep-copy every row, which at a thousand
	// ports made this the largest cost of a status call.
	portRows := cn.cache.Table(vswitch.PortTable).RowsShallow()
	ifaceRows := cn.cache.Table(vswitch.InterfaceTable).RowsShallow()
	out := make([]PortInfo, 0, len(br.Ports))
	for _, pu := range br.Ports {
		m := portRows[pu]
		if m == nil {
			continue // the monitor delivers rows table by table; it shows up shortly
		}
		p := m.(*vswitch.Port)
		info := PortInfo{
			Name:        p.Name,
			Trunks:      slices.Sorted(slices.Values(p.Trunks)), // a set: order means nothing
			ExternalIDs: maps.Clone(p.ExternalIDs),
		}
		if p.Tag != nil {
			info.Tag = *p.Tag
		}
		// A bond has several interfaces; the one named like the port speaks for it.
		for i, iu := range p.Interfaces {
			im := ifaceRows[iu]
			if im == nil {
				continue
			}
			iface := im.(*vswitch.Interface)
			if i > 0 && iface.Name != p.Name {
				continue
			}
			info.OFPort, info.Error = 0, ""
			if iface.Ofport != nil {
				info.OFPort = *iface.Ofport
			}
			if iface.Error != nil {
				info.Error = *iface.Error
			}
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b PortInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// lookup asks the server (not the cache, which may lag behind other writers) where
// the port called name is.
func (cn *conn) lookup(ctx context.Context, name string) (portLookup, error) {
	ops := lookupOps(name)
	res, err := cn.ovs.Transact(ctx, ops...)
	if err != nil {
		return portLookup{}, fmt.Errorf("look up port %s: %w", name, err)
	}
	if err := txnError(res, ops); err != nil {
		return portLookup{}, fmt.Errorf("look up port %s: %w", name, err)
	}
	return parseLookup(cn.cache.DatabaseModel(), res)
}

// rootUUID is the UUID of the single Open_vSwitch row.
func (cn *conn) rootUUID(endpoint string) (string, error) {
	for u := range cn.cache.Table(vswitch.OpenvSwitchTable).RowsShallow() {
		return u, nil
	}
	return "", fmt.Errorf("no Open_vSwitch row in %s (database not initialized?)", endpoint)
}

// waitCfg waits until ovs-vswitchd reports cur_cfg >= want, i.e. it has applied the
// database contents of the transaction that set next_cfg to want.
func (cn *conn) waitCfg(ctx context.Context, want int) error {
	return cn.waitFor(ctx, func() (bool, error) {
		for _, m := range cn.cache.Table(vswitch.OpenvSwitchTable).RowsShallow() {
			return m.(*vswitch.OpenvSwitch).CurCfg >= want, nil
		}
		return false, nil
	})
}
