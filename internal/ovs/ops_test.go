package ovs

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovn-docker/ovn-docker/internal/ovsdb/vswitch"
)

const (
	rootUUID = "5b1c9c4e-6c8a-4c36-9d4d-0d3c6d7f0a11"
	portUUID = "0d3f6b6e-2a8b-4c59-a0f2-1f6f3c1f2b22"
	ifUUID   = "7e9a1c2d-3b4c-4d5e-8f60-718293a4b533"
	brUUID   = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c44"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// TestAddPortOps checks the single transaction AddAccessPort sends: both rows, the
// bridge mutation by name, the next_cfg bump and its read-back, in that order,
// wired together with named UUIDs and valid for the real schema.
func TestAddPortOps(t *testing.T) {
	p := AccessPort{Bridge: "br-int", Name: "veth1", Tag: 42, ExternalIDs: map[string]string{"ovn-docker-port": "p1"}}
	ops := addPortOps(p, rootUUID)

	want := []struct{ op, table string }{
		addOpIface:   {ovsdb.OperationInsert, vswitch.InterfaceTable},
		addOpPort:    {ovsdb.OperationInsert, vswitch.PortTable},
		addOpBridge:  {ovsdb.OperationMutate, vswitch.BridgeTable},
		addOpBump:    {ovsdb.OperationMutate, vswitch.OpenvSwitchTable},
		addOpNextCfg: {ovsdb.OperationSelect, vswitch.OpenvSwitchTable},
	}
	if len(ops) != len(want) {
		t.Fatalf("got %d operations, want %d", len(ops), len(want))
	}
	for i, w := range want {
		if ops[i].Op != w.op || ops[i].Table != w.table {
			t.Errorf("op %d = %s %s, want %s %s", i, ops[i].Op, ops[i].Table, w.op, w.table)
		}
	}
	if !vswitch.Schema().ValidateOperations(ops...) {
		t.Errorf("operations do not validate against the vswitch schema")
	}

	js := mustJSON(t, ops)
	for _, frag := range []string{
		`"uuid-name":"new_iface"`,
		`"uuid-name":"new_port"`,
		`"interfaces":["named-uuid","new_iface"]`,
		`"mutations":[["ports","insert",["named-uuid","new_port"]]]`,
		`"where":[["name","==","br-int"]]`,
		`"tag":42`,
		`"external_ids":["map",[["ovn-docker-port","p1"]]]`,
		`"mutations":[["next_cfg","+=",1]]`,
		`"where":[["_uuid","==",["uuid","` + rootUUID + `"]]]`,
		`"columns":["next_cfg"]`,
	} {
		if !strings.Contains(js, frag) {
			t.Errorf("transaction lacks %s:\n%s", frag, js)
		}
	}
	if n := strings.Count(js, `"name":"veth1"`); n != 2 {
		t.Errorf("name veth1 appears %d times, want on Interface and Port", n)
	}
}

func TestRemovePortOps(t *testing.T) {
	ops := removePortOps("br-int", portUUID, rootUUID)
	if len(ops) != 3 || ops[0].Op != ovsdb.OperationMutate || ops[0].Table != vswitch.BridgeTable {
		t.Fatalf("unexpected operations %+v", ops)
	}
	if !vswitch.Schema().ValidateOperations(ops...) {
		t.Errorf("operations do not validate against the vswitch schema")
	}
	js := mustJSON(t, ops[0])
	if want := `"mutations":[["ports","delete",["uuid","` + portUUID + `"]]]`; !strings.Contains(js, want) {
		t.Errorf("bridge mutation %s lacks %s", js, want)
	}
}

func TestUpdateExternalIDsOps(t *testing.T) {
	ops := updateExternalIDsOps(portUUID, ifUUID, nil, rootUUID)
	if len(ops) != 4 {
		t.Fatalf("got %d operations, want 4", len(ops))
	}
	if !vswitch.Schema().ValidateOperations(ops...) {
		t.Errorf("operations do not validate against the vswitch schema")
	}
	// nil external_ids clear the column rather than leaving the old values.
	for _, op := range ops[:2] {
		if js := mustJSON(t, op); !strings.Contains(js, `"row":{"external_ids":["map",[]]}`) {
			t.Errorf("update %s does not clear external_ids", js)
		}
	}
}

func testDBModel(t *testing.T) model.DatabaseModel {
	t.Helper()
	cm, err := newClientDBModel()
	if err != nil {
		t.Fatal(err)
	}
	dm, errs := model.NewDatabaseModel(vswitch.Schema(), cm)
	if len(errs) > 0 {
		t.Fatalf("database model: %v", errs)
	}
	return dm
}

// decodeResults parses a transact reply the way libovsdb receives it from the wire.
func decodeResults(t *testing.T, js string) []ovsdb.OperationResult {
	t.Helper()
	var res []ovsdb.OperationResult
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatalf("decode results: %v", err)
	}
	return res
}

func TestParseLookup(t *testing.T) {
	dm := testDBModel(t)
	const otherIf = "11111111-2222-4333-8444-555555555555"
	found := `[
	 {"rows":[{"_uuid":["uuid","` + portUUID + `"],"name":"veth1","tag":42,
	           "interfaces":["set",[["uuid","` + otherIf + `"],["uuid","` + ifUUID + `"]]]}]},
	 {"rows":[{"_uuid":["uuid","` + ifUUID + `"],"name":"veth1"}]},
	 {"rows":[{"_uuid":["uuid","` + brUUID + `"],"name":"br-ex","ports":["set",[]]},
	          {"_uuid":["uuid","` + rootUUID + `"],"name":"br-int","ports":["set",[["uuid","` + portUUID + `"]]]}]}
	]`
	l, err := parseLookup(dm, decodeResults(t, found))
	if err != nil {
		t.Fatalf("parseLookup: %v", err)
	}
	want := portLookup{found: true, uuid: portUUID, tag: 42, bridge: "br-int", ifaceUUID: ifUUID}
	if l != want {
		t.Errorf("parseLookup = %+v, want %+v", l, want)
	}

	// No tag (empty set) and a single port given as a bare atom.
	untagged := `[
	 {"rows":[{"_uuid":["uuid","` + portUUID + `"],"name":"up0","tag":["set",[]],"interfaces":["uuid","` + ifUUID + `"]}]},
	 {"rows":[]},
	 {"rows":[{"_uuid":["uuid","` + brUUID + `"],"name":"br-ex","ports":["uuid","` + portUUID + `"]}]}
	]`
	l, err = parseLookup(dm, decodeResults(t, untagged))
	if err != nil {
		t.Fatalf("parseLookup: %v", err)
	}
	want = portLookup{found: true, uuid: portUUID, bridge: "br-ex"}
	if l != want {
		t.Errorf("parseLookup = %+v, want %+v", l, want)
	}

	missing := `[{"rows":[]},{"rows":[]},{"rows":[{"_uuid":["uuid","` + brUUID + `"],"name":"br-ex","ports":["set",[]]}]}]`
	l, err = parseLookup(dm, decodeResults(t, missing))
	if err != nil || l.found {
		t.Errorf("parseLookup of no port = %+v, %v; want not found", l, err)
	}

	if _, err := parseLookup(dm, decodeResults(t, `[{"rows":[]}]`)); err == nil {
		t.Errorf("parseLookup of a short reply succeeded")
	}
}

func TestNextCfg(t *testing.T) {
	res := decodeResults(t, `[{"rows":[{"next_cfg":17}]}]`)
	if n, err := nextCfg(res[0]); err != nil || n != 17 {
		t.Errorf("nextCfg = %d, %v; want 17", n, err)
	}
	if _, err := nextCfg(ovsdb.OperationResult{}); err == nil {
		t.Errorf("nextCfg without rows succeeded")
	}
	if _, err := nextCfg(ovsdb.OperationResult{Rows: []ovsdb.Row{{"next_cfg": "x"}}}); err == nil {
		t.Errorf("nextCfg of a string succeeded")
	}
}

func TestTxnError(t *testing.T) {
	ops := addPortOps(AccessPort{Bridge: "br0", Name: "v1", Tag: 1}, rootUUID)

	ok := decodeResults(t, `[{"uuid":["uuid","`+ifUUID+`"]},{"uuid":["uuid","`+portUUID+`"]},{"count":1},{"count":1},{"rows":[{"next_cfg":3}]}]`)
	if err := txnError(ok, ops); err != nil {
		t.Errorf("txnError of a success = %v", err)
	}

	// A duplicate name fails at commit: one result more than operations.
	dup := decodeResults(t, `[{"uuid":["uuid","`+ifUUID+`"]},{"uuid":["uuid","`+portUUID+`"]},{"count":1},{"count":1},{"rows":[{"next_cfg":3}]},
		{"error":"constraint violation","details":"Transaction causes multiple rows in \"Port\" table to have identical values (\"v1\") for index on column \"name\"."}]`)
	err := txnError(dup, ops)
	if err == nil || !isConstraintViolation(err) || !strings.Contains(err.Error(), `identical values ("v1")`) {
		t.Errorf("txnError of a duplicate = %v, want a constraint violation with details", err)
	}

	bad := decodeResults(t, `[{"uuid":["uuid","`+ifUUID+`"]},{"error":"referential integrity violation","details":"dangling"},null,null,null]`)
	err = txnError(bad, ops)
	if err == nil || isConstraintViolation(err) || !strings.Contains(err.Error(), "dangling") {
		t.Errorf("txnError of an operation error = %v, want a non-constraint error with details", err)
	}
}

func TestStringMapCopies(t *testing.T) {
	in := map[string]string{"a": "1"}
	m := stringMap(in)
	in["a"] = "2"
	got := map[string]string{}
	for k, v := range m.GoMap {
		got[k.(string)] = v.(string)
	}
	if !maps.Equal(got, map[string]string{"a": "1"}) {
		t.Errorf("stringMap = %v, want a copy {a:1}", got)
	}
}

func TestAddBridgeOps(t *testing.T) {
	ops := addBridgeOps(Bridge{Name: "br0", Datapath: "netdev", HWAddr: "fa:16:3e:00:00:01"}, "root-uuid")
	got := mustJSON(t, ops)
	for _, want := range []string{
		`"table":"Interface","row":{"name":"br0","type":"internal"},"uuid-name":"new_iface"`,
		`"table":"Port","row":{"interfaces":["named-uuid","new_iface"],"name":"br0"},"uuid-name":"new_port"`,
		`"datapath_type":"netdev"`, `"other_config":["map",[["hwaddr","fa:16:3e:00:00:01"]]]`,
		`"external_ids":["map",[["ovn-docker:setup","true"]]]`,
		`"mutations":[["bridges","insert",["named-uuid","new_bridge"]]]`,
		`"mutations":[["next_cfg","+=",1]]`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %s in\n%s", want, got)
		}
	}
	if ops[brOpNextCfg].Op != "select" || len(ops) != brOpNextCfg+1 {
		t.Fatalf("the last op reads next_cfg: %s", got)
	}
}

func TestAddUplinkOps(t *testing.T) {
	got := mustJSON(t, addUplinkOps("br0", "eth0", "root-uuid"))
	if strings.Contains(got, `"tag"`) {
		t.Fatalf("the uplink carries every VLAN: no tag\n%s", got)
	}
	for _, want := range []string{`"where":[["name","==","br0"]]`, `"name":"eth0"`, `["ports","insert",["named-uuid","new_port"]]`} {
		if !strings.Contains(got, want) {
			t.Errorf("no %s in\n%s", want, got)
		}
	}
}

func TestDeleteBridgeOps(t *testing.T) {
	const br = "5f1b8a3e-0c6d-4e2f-9b7a-1d2c3e4f5a6b"
	got := mustJSON(t, deleteBridgeOps(br, "root-uuid"))
	if !strings.Contains(got, `["bridges","delete",["uuid","`+br+`"]]`) {
		t.Fatalf("%s", got)
	}
}
