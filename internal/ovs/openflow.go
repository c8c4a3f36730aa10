package ovs

// What the RA guard (package raguard) asks of the database: a bridge that accepts
// OpenFlow 1.3.

import (
	"context"
	"fmt"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovn-docker/ovn-docker/internal/ovsdb/vswitch"
)

// acceptOpenFlow13Ops adds OpenFlow13 to the bridge's protocols, keeping the others;
// nil when nothing is to do (empty protocols: ovs-vswitchd's default set has 1.3).
func acceptOpenFlow13Ops(bridgeUUID string, protocols []string, rootUUID string) []ovsdb.Operation {
	if len(protocols) == 0 || slices.Contains(protocols, vswitch.BridgeProtocolsOpenflow13) {
		return nil
	}
	set := ovsdb.OvsSet{GoSet: []any{vswitch.BridgeProtocolsOpenflow13}}
	return append([]ovsdb.Operation{{Op: ovsdb.OperationMutate, Table: vswitch.BridgeTable, Where: []ovsdb.Condition{uuidIs(bridgeUUID)},
		Mutations: []ovsdb.Mutation{*ovsdb.NewMutation("protocols", ovsdb.MutateOperationInsert, set)}}}, bumpCfgOps(rootUUID)...)
}

// AcceptOpenFlow13 makes sure the bridge accepts OpenFlow 1.3: when its protocols are
// set and leave 1.3 out, 1.3 is added to them, and ovs-vswitchd has applied it on return.
func (c *Client) AcceptOpenFlow13(ctx context.Context, bridge string) error {
	return c.do(ctx, func(cn *conn) error {
		ops := []ovsdb.Operation{{Op: ovsdb.OperationSelect, Table: vswitch.BridgeTable,
			Where: []ovsdb.Condition{ovsdb.NewCondition("name", ovsdb.ConditionEqual, bridge)}, Columns: []string{"_uuid", "name", "protocols"}}}
		res, err := cn.ovs.Transact(ctx, ops...)
		if err == nil {
			err = txnError(res, ops)
		}
		if err != nil {
			return fmt.Errorf("read the protocols of bridge %s: %w", bridge, err)
		}
		if len(res[0].Rows) == 0 {
			return fmt.Errorf("bridge %s not found in %s", bridge, c.endpoint)
		}
		m, err := rowModel(cn.cache.DatabaseModel(), vswitch.BridgeTable, res[0].Rows[0])
		if err != nil {
			return err
		}
		br := m.(*vswitch.Bridge)
		root, err := cn.rootUUID(c.endpoint)
		if err != nil {
			return err
		}
		mut := acceptOpenFlow13Ops(br.UUID, br.Protocols, root)
		if mut == nil {
			return nil
		}
		res, err = cn.ovs.Transact(ctx, mut...)
		if err == nil {
			err = txnError(res, mut)
		}
		if err != nil {
			return fmt.Errorf("add OpenFlow13 to the protocols of bridge %s: %w", bridge, err)
		}
		want, err := nextCfg(res[len(res)-1])
		if err != nil {
			return err
		}
		return cn.waitCfg(ctx, want)
	})
}
