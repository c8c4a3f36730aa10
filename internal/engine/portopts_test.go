package engine

import (
	"context"
	"reflect"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// A request with port options never takes a pool's interface (made with Neutron's
// defaults): it goes the cold way, and its port is asked for with the options.
func TestPortOptionsSkipThePool(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	const pool = "pool:net-1:"
	atts, err := h.e.PrepareBatch(ctx, Request{Owner: pool, OwnerKind: state.OwnerPool, Pool: pool, Network: h.net, AtRest: true}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Plumb(ctx, atts[0].ID, Request{Owner: pool, OwnerKind: state.OwnerPool}); err != nil {
		t.Fatal(err)
	}
	req := h.request("sb1", "eth0")
	req.SecurityGroups = nil
	req.Port = neutron.PortOptions{AllowedAddresses: []neutron.AddressPair{{IP: "10.0.0.50"}}, QoSPolicyID: "q", DNSName: "web"}
	if got, err := h.e.Claim(ctx, pool, req); err != nil || got != nil {
		t.Fatalf("claim with port options: %+v, %v; want none", got, err)
	}
	h.w.reset()
	att := h.attach(t, req)
	if att.PortID == atts[0].PortID {
		t.Errorf("the pool's port was used")
	}
	calls := callsNamed(h.w.log(), "neutron.CreatePort")
	if len(calls) != 1 {
		t.Fatalf("%d port calls, want 1", len(calls))
	}
	if pr, ok := calls[0].Args[0].(neutron.PortRequest); !ok || !reflect.DeepEqual(pr.Options, req.Port) {
		t.Errorf("port request %+v, want options %+v", calls[0].Args[0], req.Port)
	}
	if got, err := h.e.Claim(ctx, pool, h.request("sb2", "eth0")); err != nil || got == nil {
		t.Errorf("claim without options: %+v, %v; want the pool's", got, err)
	}
}
