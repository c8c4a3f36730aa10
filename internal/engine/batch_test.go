package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// A pool's interfaces through the engine: a batch made with one bulk port call and one
// add_subports, plumbed and proven at rest; one claimed and moved into a container with
// no Neutron call; taken back, scrubbed, when its container leaves; plumbed anew when
// the container's netns died with the pair.
func TestPoolInterfaces(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	const pool = "pool:net-1:"
	atts, err := h.e.PrepareBatch(ctx, Request{Owner: pool, OwnerKind: state.OwnerPool, Pool: pool, Network: h.net, AtRest: true}, 3)
	if err != nil {
		t.Fatal(err)
	}
	log := h.w.log()
	if n, bulk := len(callsNamed(log, "neutron.CreatePort")), len(callsNamed(log, "neutron.CreatePorts")); n != 0 || bulk != 1 {
		t.Errorf("%d single and %d bulk port calls, want 0 and 1", n, bulk)
	}
	if n, bulk := len(callsNamed(log, "neutron.AddSubport")), len(callsNamed(log, "neutron.AddSubports")); n != 0 || bulk != 1 {
		t.Errorf("%d single and %d bulk subport calls, want 0 and 1", n, bulk)
	}
	vlans := map[int]bool{}
	for _, a := range atts {
		if a.Phase != state.PhasePrepared || a.PID != 0 || a.Pool != pool || h.w.trunk.Subports[a.PortID] != a.VLAN {
			t.Errorf("batch attachment %+v; trunk %v", a, h.w.trunk.Subports)
		}
		vlans[a.VLAN] = true
		if _, err := h.e.Plumb(ctx, a.ID, Request{Owner: pool, OwnerKind: state.OwnerPool}); err != nil {
			t.Fatal(err)
		}
	}
	if len(vlans) != 3 {
		t.Errorf("VLANs %v: want three different ones", vlans)
	}

	user := h.request("sb1", "eth0")
	h.w.reset()
	got, err := h.e.Claim(ctx, pool, user)
	if err != nil || got == nil {
		t.Fatalf("claim: %+v, %v", got, err)
	}
	att, err := h.e.Take(ctx, got.ID, user)
	if err != nil {
		t.Fatal(err)
	}
	if att.Phase != state.PhaseAttached || att.Owner != "sb1" || att.NetNS != user.NetNS || att.IfName != "eth0" {
		t.Errorf("taken: %+v", att)
	}
	for _, c := range h.w.log() {
		if strings.HasPrefix(c.Name, "neutron.") {
			t.Errorf("the warm path called Neutron: %s", c.Name)
		}
	}
	if v := h.w.veths[att.HostIf]; v.netns != user.NetNS || v.spec == nil || v.spec.IfName != "eth0" {
		t.Errorf("the pair's container end: %+v", v)
	}

	// The container leaves: its interface goes back to the pool, in the VM again.
	if err := h.e.Return(ctx, att.ID, pool); err != nil {
		t.Fatal(err)
	}
	back, err := h.e.Attachment(ctx, att.ID)
	if err != nil || back.Phase != state.PhaseReady || back.Owner != pool || back.NetNS != "" || back.Container != "" {
		t.Fatalf("returned: %+v, %v", back, err)
	}
	if v := h.w.veths[att.HostIf]; v.netns != "" {
		t.Errorf("the returned pair's container end is in %q", v.netns)
	}

	// Taken again; this time the container's netns dies with the pair before the return.
	if got, err = h.e.Claim(ctx, pool, user); err != nil || got == nil {
		t.Fatalf("claim again: %+v, %v", got, err)
	}
	if att, err = h.e.Take(ctx, got.ID, user); err != nil {
		t.Fatal(err)
	}
	h.w.dropNetNS(user.NetNS)
	if err := h.e.Return(ctx, att.ID, pool); err != nil {
		t.Fatal(err)
	}
	if back, err = h.e.Attachment(ctx, att.ID); err != nil || back.Phase != state.PhaseReady || back.PortID != att.PortID {
		t.Fatalf("returned after its netns died: %+v, %v", back, err)
	}
	if _, ok := h.w.veths[back.HostIf]; !ok || !h.w.active(back.PortID) {
		t.Errorf("the pool's interface was not plumbed anew: veth %v, active %v", ok, h.w.active(back.PortID))
	}

	all, err := h.e.Attachments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if err := h.e.Detach(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.assertClean(t)
}

// The collector deletes what no attachment records (a port made for the VM, an access
// port and a pair of ovn-docker's) only when a second pass finds it orphaned again, and
// leaves what an attachment holds and what is someone else's.
func TestGCOrphans(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	att := h.attach(t, h.request("o", "eth0"))
	fn, fs, fl := fakeNeutron{h.w}, fakeSwitch{h.w}, fakeLinks{h.w}
	orphan, err := fn.CreatePort(ctx, neutron.PortRequest{NetworkID: h.net.ID, AttachmentID: "dead00000001", VIFID: testVIF})
	if err != nil {
		t.Fatal(err)
	}
	host, peer := netdev.HostName(orphan.ID), netdev.PeerName(orphan.ID)
	if err := fl.CreatePair(ctx, host, peer, 1442, nil); err != nil {
		t.Fatal(err)
	}
	if err := fs.AddAccessPort(ctx, ovs.AccessPort{Bridge: testBridge, Name: host, Tag: 99,
		ExternalIDs: map[string]string{ExtAttachment: "dead00000001"}}); err != nil {
		t.Fatal(err)
	}
	h.w.veths["foreign-v"] = veth{peer: "foreign-c"}
	h.w.ovsPorts["foreign-v"] = ovs.AccessPort{Bridge: testBridge, Name: "foreign-v", Tag: 7}

	first, err := h.e.GC(ctx, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The port, the access port and the pair's two ends, seen once.
	if first.Marked != 4 || first.Ports+first.OVSPorts+first.Veths != 0 {
		t.Fatalf("first pass: %+v; want 4 marked, nothing deleted", first)
	}
	second, err := h.e.GC(ctx, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if second.Ports != 1 || second.OVSPorts != 1 || second.Veths != 2 || second.Marked != 0 {
		t.Fatalf("second pass: %+v; want the port, the access port and both ends deleted", second)
	}
	h.w.mu.Lock()
	_, portLeft := h.w.ports[orphan.ID]
	_, vethLeft := h.w.veths[host]
	_, ovsLeft := h.w.ovsPorts[host]
	_, foreignLeft := h.w.ovsPorts["foreign-v"]
	h.w.mu.Unlock()
	if portLeft || vethLeft || ovsLeft || !foreignLeft {
		t.Errorf("after: orphan port %v, veth %v, access port %v left; someone else's port left %v", portLeft, vethLeft, ovsLeft, foreignLeft)
	}
	if a, err := h.e.Attachment(ctx, att.ID); err != nil || a == nil || !h.w.active(a.PortID) {
		t.Fatalf("the attachment after gc: %+v, %v", a, err)
	}
	if err := h.e.Detach(ctx, att.ID); err != nil {
		t.Fatal(err)
	}
	delete(h.w.veths, "foreign-v")
	h.assertClean(t)
}
