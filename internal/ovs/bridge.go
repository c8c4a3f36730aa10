package ovs

// The VM's bridge and its uplink, for ovn-docker setup: what ovs-vsctl add-br and
// add-port do, as one transaction each, built by pure functions like the access ports'.

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovn-docker/ovn-docker/internal/ovsdb/vswitch"
)

// SetupOwner marks, in external_ids, what ovn-docker setup made: only that is undone.
const SetupOwner = "ovn-docker:setup"

// Bridge is a bridge to make: its datapath ("system", the kernel's; "netdev",
// userspace) and the MAC of its own interface (the uplink's, so that the VM keeps the
// address Neutron's port security knows).
type Bridge struct {
	Name     string
	Datapath string
	HWAddr   string
}

const (
	bridgeRef = "new_bridge"
)

// Positions in addBridgeOps' transaction.
const (
	brOpIface = iota
	brOpPort
	brOpBridge
	brOpRoot
	brOpBump
	brOpNextCfg
)

// addBridgeOps inserts the bridge with its internal port of the same name, owned by
// setup, and adds it to the root row.
func addBridgeOps(b Bridge, rootUUID string) []ovsdb.Operation {
	owned := stringMap(map[string]string{SetupOwner: "true"})
	row := ovsdb.Row{"name": b.Name, "ports": uuidSet(portRef), "external_ids": owned}
	if b.Datapath != "" {
		row["datapath_type"] = b.Datapath
	}
	if b.HWAddr != "" {
		row["other_config"] = stringMap(map[string]string{"hwaddr": b.HWAddr})
	}
	ops := []ovsdb.Operation{
		brOpIface: {Op: ovsdb.OperationInsert, Table: vswitch.InterfaceTable, UUIDName: ifaceRef,
			Row: ovsdb.Row{"name": b.Name, "type": "internal"}},
		brOpPort: {Op: ovsdb.OperationInsert, Table: vswitch.PortTable, UUIDName: portRef,
			Row: ovsdb.Row{"name": b.Name, "interfaces": uuidSet(ifaceRef)}},
		brOpBridge: {Op: ovsdb.OperationInsert, Table: vswitch.BridgeTable, UUIDName: bridgeRef, Row: row},
		brOpRoot: {Op: ovsdb.OperationMutate, Table: vswitch.OpenvSwitchTable, Where: []ovsdb.Condition{uuidIs(rootUUID)},
			Mutations: []ovsdb.Mutation{*ovsdb.NewMutation("bridges", ovsdb.MutateOperationInsert, uuidSet(bridgeRef))}},
	}
	return append(ops, bumpCfgOps(rootUUID)...)
}

// deleteBridgeOps takes the bridge out of the root row; its ports and interfaces go
// with it (unreferenced rows are garbage-collected in the same transaction).
func deleteBridgeOps(bridgeUUID, rootUUID string) []ovsdb.Operation {
	return append([]ovsdb.Operation{{
		Op: ovsdb.OperationMutate, Table: vswitch.OpenvSwitchTable, Where: []ovsdb.Condition{uuidIs(rootUUID)},
		Mutations: []ovsdb.Mutation{*ovsdb.NewMutation("bridges", ovsdb.MutateOperationDelete, uuidSet(bridgeUUID))},
	}}, bumpCfgOps(rootUUID)...)
}

// addUplinkOps adds device name to bridge as a port with no tag: it carries every VLAN.
func addUplinkOps(bridge, name, rootUUID string) []ovsdb.Operation {
	owned := stringMap(map[string]string{SetupOwner: "true"})
	ops := []ovsdb.Operation{
		addOpIface: {Op: ovsdb.OperationInsert, Table: vswitch.InterfaceTable, UUIDName: ifaceRef,
			Row: ovsdb.Row{"name": name}},
		addOpPort: {Op: ovsdb.OperationInsert, Table: vswitch.PortTable, UUIDName: portRef,
			Row: ovsdb.Row{"name": name, "interfaces": uuidSet(ifaceRef), "external_ids": owned}},
		addOpBridge: {Op: ovsdb.OperationMutate, Table: vswitch.BridgeTable,
			Where:     []ovsdb.Condition{ovsdb.NewCondition("name", ovsdb.ConditionEqual, bridge)},
			Mutations: []ovsdb.Mutation{*ovsdb.NewMutation("ports", ovsdb.MutateOperationInsert, uuidSet(portRef))}},
	}
	return append(ops, bumpCfgOps(rootUUID)...)
}

// BridgeExists says whether the bridge is in the database.
func (c *Client) BridgeExists(ctx context.Context, name string) (bool, error) {
	var found bool
	err := c.do(ctx, func(cn *conn) error {
		found = cn.bridgeUUID(name) != ""
		return nil
	})
	return found, err
}

func (cn *conn) bridgeUUID(name string) string {
	for u, m := range cn.cache.Table(vswitch.BridgeTable).RowsShallow() {
		if m.(*vswitch.Bridge).Name == name {
			return u
		}
	}
	return ""
}

// AddBridge makes bridge b and waits until ovs-vswitchd has made it.
func (c *Client) AddBridge(ctx context.Context, b Bridge) error {
	if err := checkIfName(b.Name); err != nil {
		return err
	}
	return c.do(ctx, func(cn *conn) error {
		if cn.bridgeUUID(b.Name) != "" {
			return fmt.Errorf("add bridge %s: it exists", b.Name)
		}
		root, err := cn.rootUUID(c.endpoint)
		if err != nil {
			return err
		}
		ops := addBridgeOps(b, root)
		res, err := cn.ovs.Transact(ctx, ops...)
		if err == nil {
			err = txnError(res, ops)
		}
		if err != nil {
			return fmt.Errorf("add bridge %s: %w", b.Name, err)
		}
		want, err := nextCfg(res[brOpNextCfg])
		if err != nil {
			return err
		}
		return cn.waitCfg(ctx, want)
	})
}

// DeleteBridge removes the bridge and its ports (setup's rollback of a bridge it made).
func (c *Client) DeleteBridge(ctx context.Context, name string) error {
	return c.do(ctx, func(cn *conn) error {
		u := cn.bridgeUUID(name)
		if u == "" {
			return nil
		}
		root, err := cn.rootUUID(c.endpoint)
		if err != nil {
			return err
		}
		ops := deleteBridgeOps(u, root)
		res, err := cn.ovs.Transact(ctx, ops...)
		if err == nil {
			err = txnError(res, ops)
		}
		if err != nil {
			return fmt.Errorf("delete bridge %s: %w", name, err)
		}
		want, err := nextCfg(res[len(res)-1])
		if err != nil {
			return err
		}
		return cn.waitCfg(ctx, want)
	})
}

// AddUplink adds device name to bridge, untagged (a trunk of every VLAN), and waits
// until ovs-vswitchd has opened it.
func (c *Client) AddUplink(ctx context.Context, bridge, name string) error {
	if err := checkIfName(name); err != nil {
		return err
	}
	return c.do(ctx, func(cn *conn) error {
		root, err := cn.rootUUID(c.endpoint)
		if err != nil {
			return err
		}
		ops := addUplinkOps(bridge, name, root)
		res, err := cn.ovs.Transact(ctx, ops...)
		if err == nil {
			err = txnError(res, ops)
		}
		if err != nil {
			return fmt.Errorf("add port %s to bridge %s: %w", name, bridge, err)
		}
		if res[addOpBridge].Count == 0 {
			return fmt.Errorf("bridge %s not found in %s", bridge, c.endpoint)
		}
		want, err := nextCfg(res[addOpNextCfg])
		if err != nil {
			return err
		}
		return c.confirm(ctx, cn, AccessPort{Bridge: bridge, Name: name}, res[addOpIface].UUID.GoUUID, want)
	})
}
