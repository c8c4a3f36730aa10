package ovs

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovn-docker/ovn-docker/internal/ovsdb/vswitch"
)

// Named UUIDs let the Port row refer to the Interface and the Bridge to the Port that
// the same transaction inserts.
const (
	ifaceRef = "new_iface"
	portRef  = "new_port"
)

// Positions of the operations in the transaction built by addPortOps.
const (
	addOpIface = iota
	addOpPort
	addOpBridge
	addOpBump
	addOpNextCfg
)

// addPortOps is the single transaction that creates an access port. The bridge is
// matched by name on the server, so the mutation's row count says whether it exists:
// with no bridge the new rows are unreferenced and the server drops them again.
func addPortOps(p AccessPort, rootUUID string) []ovsdb.Operation {
	ext := stringMap(p.ExternalIDs)
	ops := []ovsdb.Operation{
		addOpIface: {
			Op:       ovsdb.OperationInsert,
			Table:    vswitch.InterfaceTable,
			UUIDName: ifaceRef,
			Row:      ovsdb.Row{"name": p.Name, "external_ids": ext},
		},
		addOpPort: {
			Op:       ovsdb.OperationInsert,
			Table:    vswitch.PortTable,
			UUIDName: portRef,
			Row: ovsdb.Row{
				"name":         p.Name,
				"interfaces":   uuidSet(ifaceRef),
				"tag":          p.Tag,
				"external_ids": ext,
			},
		},
		addOpBridge: {
			Op:        ovsdb.OperationMutate,
			Table:     vswitch.BridgeTable,
			Where:     []ovsdb.Condition{ovsdb.NewCondition("name", ovsdb.ConditionEqual, p.Bridge)},
			Mutations: []ovsdb.Mutation{*ovsdb.NewMutation("ports", ovsdb.MutateOperationInsert, uuidSet(portRef))},
		},
	}
	return append(ops, bumpCfgOps(rootUUID)...)
}

// updateExternalIDsOps refreshes the external_ids of an existing port and its
// interface; used when AddAccessPort finds its port already in place.
func updateExternalIDsOps(portUUID, ifaceUUID string, ext map[string]string, rootUUID string) []ovsdb.Operation {
	m := stringMap(ext)
	ops := []ovsdb.Operation{{
		Op:    ovsdb.OperationUpdate,
		Table: vswitch.PortTable,
		Where: []ovsdb.Condition{uuidIs(portUUID)},
		Row:   ovsdb.Row{"external_ids": m},
	}}
	if ifaceUUID != "" {
		ops = append(ops, ovsdb.Operation{
			Op:    ovsdb.OperationUpdate,
			Table: vswitch.InterfaceTable,
			Where: []ovsdb.Condition{uuidIs(ifaceUUID)},
			Row:   ovsdb.Row{"external_ids": m},
		})
	}
	return append(ops, bumpCfgOps(rootUUID)...)
}

// removePortOps detaches a port from its bridge; the Port and its Interface rows are
// then unreferenced and garbage-collected by the server in the same transaction.
func removePortOps(bridge, portUUID, rootUUID string) []ovsdb.Operation {
	return append([]ovsdb.Operation{{
		Op:        ovsdb.OperationMutate,
		Table:     vswitch.BridgeTable,
		Where:     []ovsdb.Condition{ovsdb.NewCondition("name", ovsdb.ConditionEqual, bridge)},
		Mutations: []ovsdb.Mutation{*ovsdb.NewMutation("ports", ovsdb.MutateOperationDelete, uuidSet(portUUID))},
	}}, bumpCfgOps(rootUUID)...)
}

// bumpCfgOps asks ovs-vswitchd to reconfigure (next_cfg += 1) and reads back the
// value it has to reach, as ovs-vsctl does.
func bumpCfgOps(rootUUID string) []ovsdb.Operation {
	where := []ovsdb.Condition{uuidIs(rootUUID)}
	return []ovsdb.Operation{
		{
			Op:        ovsdb.OperationMutate,
			Table:     vswitch.OpenvSwitchTable,
			Where:     where,
			Mutations: []ovsdb.Mutation{*ovsdb.NewMutation("next_cfg", ovsdb.MutateOperationAdd, 1)},
		},
		{
			Op:      ovsdb.OperationSelect,
			Table:   vswitch.OpenvSwitchTable,
			Where:   where,
			Columns: []string{"next_cfg"},
		},
	}
}

// lookupOps reads, in one snapshot, the port called name, the interface called name
// and every bridge's port list, which is enough to tell where the port lives.
func lookupOps(name string) []ovsdb.Operation {
	byName := []ovsdb.Condition{ovsdb.NewCondition("name", ovsdb.ConditionEqual, name)}
	return []ovsdb.Operation{
		{Op: ovsdb.OperationSelect, Table: vswitch.PortTable, Where: byName, Columns: []string{"_uuid", "name", "tag", "interfaces"}},
		{Op: ovsdb.OperationSelect, Table: vswitch.InterfaceTable, Where: byName, Columns: []string{"_uuid", "name"}},
		{Op: ovsdb.OperationSelect, Table: vswitch.BridgeTable, Columns: []string{"_uuid", "name", "ports"}},
	}
}

// portLookup is what lookupOps found.
type portLookup struct {
	found     bool
	uuid      string
	tag       int // 0 = none
	bridge    string
	ifaceUUID string // the port's interface named like the port, "" if none
}

// parseLookup interprets the results of lookupOps.
func parseLookup(dbModel model.DatabaseModel, res []ovsdb.OperationResult) (portLookup, error) {
	if len(res) < 3 {
		return portLookup{}, fmt.Errorf("port lookup: got %d results, want 3", len(res))
	}
	var l portLookup
	for _, row := range res[0].Rows {
		m, err := rowModel(dbModel, vswitch.PortTable, row)
		if err != nil {
			return portLookup{}, err
		}
		p := m.(*vswitch.Port)
		l.found, l.uuid = true, p.UUID
		if p.Tag != nil {
			l.tag = *p.Tag
		}
		for _, irow := range res[1].Rows {
			im, err := rowModel(dbModel, vswitch.InterfaceTable, irow)
			if err != nil {
				return portLookup{}, err
			}
			if iface := im.(*vswitch.Interface); slices.Contains(p.Interfaces, iface.UUID) {
				l.ifaceUUID = iface.UUID
			}
		}
	}
	if !l.found {
		return l, nil
	}
	for _, row := range res[2].Rows {
		m, err := rowModel(dbModel, vswitch.BridgeTable, row)
		if err != nil {
			return portLookup{}, err
		}
		if br := m.(*vswitch.Bridge); slices.Contains(br.Ports, l.uuid) {
			l.bridge = br.Name
		}
	}
	return l, nil
}

// rowModel turns a row returned by a select into its model.
func rowModel(dbModel model.DatabaseModel, table string, row ovsdb.Row) (model.Model, error) {
	u, ok := row["_uuid"].(ovsdb.UUID)
	if !ok {
		return nil, fmt.Errorf("%s row without _uuid", table)
	}
	m, err := model.CreateModel(dbModel, table, &row, u.GoUUID)
	if err != nil {
		return nil, fmt.Errorf("decode %s row: %w", table, err)
	}
	return m, nil
}

// nextCfg reads the value selected by the second operation of bumpCfgOps.
func nextCfg(res ovsdb.OperationResult) (int, error) {
	if len(res.Rows) != 1 {
		return 0, fmt.Errorf("read next_cfg: got %d Open_vSwitch rows, want 1", len(res.Rows))
	}
	switch v := res.Rows[0]["next_cfg"].(type) {
	case float64:
		return int(v), nil
	case int:
		return v, nil
	default:
		return 0, fmt.Errorf("read next_cfg: unexpected value %v (%T)", v, v)
	}
}

// txnError turns the per-operation results of a transaction into one error, or nil.
// Commit-time failures (such as a duplicate name) come as an extra result.
func txnError(res []ovsdb.OperationResult, ops []ovsdb.Operation) error {
	opErrs, err := ovsdb.CheckOperationResults(res, ops)
	if err == nil {
		return nil
	}
	if len(opErrs) == 0 {
		return err
	}
	errs := make([]error, 0, len(opErrs))
	for _, e := range opErrs {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// isConstraintViolation reports a commit refused for breaking a unique index, i.e. a
// Port or Interface of that name already exists.
func isConstraintViolation(err error) bool {
	var cv *ovsdb.ConstraintViolation
	return errors.As(err, &cv)
}

func uuidIs(u string) ovsdb.Condition {
	return ovsdb.NewCondition("_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: u})
}

// uuidSet holds real or named UUIDs; libovsdb encodes the latter as named-uuid.
func uuidSet(uuids ...string) ovsdb.OvsSet {
	s := ovsdb.OvsSet{GoSet: make([]any, 0, len(uuids))}
	for _, u := range uuids {
		s.GoSet = append(s.GoSet, ovsdb.UUID{GoUUID: u})
	}
	return s
}

func stringMap(m map[string]string) ovsdb.OvsMap {
	om := ovsdb.OvsMap{GoMap: make(map[any]any, len(m))}
	for k, v := range m {
		om.GoMap[k] = v
	}
	return om
}
