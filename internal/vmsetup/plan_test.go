package vmsetup

import (
	"net"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func snapWith(bridge, onBridge bool, addrs ...string) *snapshot {
	mac, _ := net.ParseMAC("fa:16:3e:00:00:01")
	s := &snapshot{bridgeExists: bridge, uplinkOnBridge: onBridge,
		uplink: &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "eth0", Index: 2, MTU: 1442, HardwareAddr: mac}}}
	for _, a := range addrs {
		ip, n, _ := net.ParseCIDR(a)
		n.IP = ip
		s.addrs = append(s.addrs, netlink.Addr{IPNet: n})
	}
	if len(addrs) > 0 {
		_, all, _ := net.ParseCIDR("0.0.0.0/0")
		s.routes = []netlink.Route{{Dst: all, Gw: net.ParseIP("192.0.2.1"), LinkIndex: 2}}
	}
	return s
}

func whats(plan []step) string {
	var out []string
	for _, s := range plan {
		out = append(out, s.what)
	}
	return strings.Join(out, "\n")
}

// TestPlanFromACloudImage: a VM as a cloud image boots it, the userspace datapath: the
// bridge first, the uplink on it, the address onto the bridge before it leaves the
// uplink, the kernel off the uplink only then, the routes last.
func TestPlanFromACloudImage(t *testing.T) {
	got := whats(planFor(Config{Bridge: "br0", Uplink: "eth0", Datapath: "netdev"}, snapWith(false, false, "192.0.2.5/24")))
	want := `create bridge br0 (datapath netdev, MAC fa:16:3e:00:00:01, the uplink's)
bring br0 up with MTU 1442, the uplink's
add eth0 to br0 (untagged: it carries every VLAN)
add 192.0.2.5/24 to br0
keep 1 route(s) through eth0 to put back if needed
remove 192.0.2.5/24 from eth0
stop the kernel answering on eth0 (ARP and IPv6 off: the userspace datapath reads it)
route default via 192.0.2.1 onto br0`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestPlanIdempotent(t *testing.T) {
	if p := planFor(Config{Bridge: "br0", Uplink: "eth0"}, snapWith(true, true)); len(p) != 0 {
		t.Fatalf("set up already, yet:\n%s", whats(p))
	}
	// A bridge someone made, without the uplink: it is kept (no create, so no delete on undo).
	p := planFor(Config{Bridge: "br0", Uplink: "eth0", Datapath: "system"}, snapWith(true, false, "192.0.2.5/24"))
	if strings.Contains(whats(p), "create bridge") || strings.Contains(whats(p), "kernel answering") {
		t.Fatalf("plan:\n%s", whats(p))
	}
}

// TestUndoOrder: undone in reverse, the addresses are back on the uplink before its routes.
func TestUndoOrder(t *testing.T) {
	p := planFor(Config{Bridge: "br0", Uplink: "eth0"}, snapWith(false, false, "192.0.2.5/24"))
	idx := func(prefix string) int {
		for i, s := range p {
			if strings.HasPrefix(s.what, prefix) {
				return i
			}
		}
		t.Fatalf("no step %q", prefix)
		return -1
	}
	if !(idx("keep 1 route") < idx("remove 192.0.2.5/24") && idx("add 192.0.2.5/24 to br0") < idx("remove 192.0.2.5/24")) {
		t.Fatalf("order:\n%s", whats(p))
	}
	if p[idx("keep 1 route")].undo == nil || p[idx("create bridge")].undo == nil {
		t.Fatal("a step that changes the VM has no undo")
	}
}
