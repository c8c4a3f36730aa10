package vmsetup

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/resolved"
)

// fakeDNS records what setup asks of resolved (the logic of the plan only; the
// end-to-end test runs the real resolved).
type fakeDNS struct {
	links map[int]resolved.Link
	calls []string
}

func (f *fakeDNS) Link(_ context.Context, i int) (resolved.Link, error) { return f.links[i], nil }
func (f *fakeDNS) SetLink(_ context.Context, i int, l resolved.Link) error {
	f.calls = append(f.calls, "set "+l.String())
	f.links[i] = l
	return nil
}
func (f *fakeDNS) Revert(_ context.Context, i int) error {
	f.calls = append(f.calls, "revert")
	delete(f.links, i)
	return nil
}

var eth0DNS = resolved.Link{
	Servers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")},
	Domains: []resolved.Domain{{Name: "example.org"}, {Name: "corp.example", RouteOnly: true}},
}

// TestPlanMovesDNS: the bridge gets the uplink's servers and domains before it gets
// its addresses (resolved uses them from then on); undone, the bridge has none again.
func TestPlanMovesDNS(t *testing.T) {
	s := snapWith(false, false, "192.0.2.5/24")
	s.uplinkDNS = eth0DNS
	f := &fakeDNS{links: map[int]resolved.Link{}}
	p := planFor(Config{Bridge: "br0", Uplink: "eth0", DNS: f}, s)
	got := whats(p)
	want := "bring br0 up with MTU 1442, the uplink's\n" +
		"give br0 the DNS of eth0 in systemd-resolved (servers 192.0.2.53 2001:db8::53, domains example.org ~corp.example)\n" +
		"add eth0 to br0"
	if !strings.Contains(got, want) {
		t.Fatalf("got\n%s\nwant within it\n%s", got, want)
	}
	// The step reads the bridge's index when it runs, once the bridge exists.
	dns := dnsStep(Config{Bridge: "br0", Uplink: "eth0", DNS: f}, s, func() int { return 7 })
	if err := dns.do(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !f.links[7].Equal(eth0DNS) {
		t.Fatalf("bridge has %v", f.links[7])
	}
	if err := dns.undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.links[7]; ok || f.calls[len(f.calls)-1] != "revert" {
		t.Fatalf("undo left %v (calls %v)", f.links, f.calls)
	}
}

// TestPlanDNSIdempotent: set up, with the bridge holding the uplink's DNS, nothing to
// do; set up before resolved held DNS for the uplink, only the DNS step; a bridge that
// had DNS of its own gets it back on undo.
func TestPlanDNSIdempotent(t *testing.T) {
	s := snapWith(true, true)
	s.uplinkDNS, s.bridgeDNS = eth0DNS, eth0DNS
	if p := planFor(Config{Bridge: "br0", Uplink: "eth0"}, s); len(p) != 0 {
		t.Fatalf("set up already, yet:\n%s", whats(p))
	}
	own := resolved.Link{Servers: []netip.Addr{netip.MustParseAddr("198.51.100.1")}}
	s.bridgeDNS = own
	f := &fakeDNS{links: map[int]resolved.Link{3: own}}
	p := planFor(Config{Bridge: "br0", Uplink: "eth0", DNS: f}, s)
	if got := whats(p); strings.Contains(got, "add ") || !strings.Contains(got, "give br0 the DNS of eth0") {
		t.Fatalf("plan:\n%s", got)
	}
	st := dnsStep(Config{Bridge: "br0", Uplink: "eth0", DNS: f}, s, func() int { return 3 })
	if err := st.do(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !f.links[3].Equal(own) {
		t.Fatalf("undo gave the bridge %v, not its own %v", f.links[3], own)
	}
	// No DNS on the uplink (no resolved, or resolv.conf only): nothing about DNS.
	s.uplinkDNS, s.bridgeDNS = resolved.Link{}, resolved.Link{}
	if p := planFor(Config{Bridge: "br0", Uplink: "eth0"}, s); len(p) != 0 {
		t.Fatalf("no DNS to move, yet:\n%s", whats(p))
	}
}
