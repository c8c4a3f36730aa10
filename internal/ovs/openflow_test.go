package ovs

import (
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/ovsdb/vswitch"
)

func TestAcceptOpenFlow13Ops(t *testing.T) {
	for _, keep := range [][]string{nil, {"OpenFlow10", "OpenFlow13"}} {
		if ops := acceptOpenFlow13Ops(testBridgeUUID, keep, rootUUID); ops != nil {
			t.Errorf("protocols %v: %v, want nothing to do", keep, ops)
		}
	}
	ops := acceptOpenFlow13Ops(testBridgeUUID, []string{"OpenFlow10"}, rootUUID)
	if len(ops) != 3 || !vswitch.Schema().ValidateOperations(ops...) {
		t.Fatalf("ops %v: want a mutate and the next_cfg bump, valid", ops)
	}
	js := mustJSON(t, ops[0])
	if !strings.Contains(js, `"mutations":[["protocols","insert","OpenFlow13"]]`) {
		t.Errorf("mutation %s: want OpenFlow13 inserted, the others kept", js)
	}
}

const testBridgeUUID = "2f0f9e5c-7e0c-4e8e-9d2a-1b2c3d4e5f60"
