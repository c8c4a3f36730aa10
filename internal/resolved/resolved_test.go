package resolved

import (
	"net/netip"
	"testing"
)

func TestLinkString(t *testing.T) {
	l := Link{
		Servers: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")},
		Domains: []Domain{{Name: "example.org"}, {Name: "corp.example", RouteOnly: true}},
	}
	if got, want := l.String(), "servers 192.0.2.53 2001:db8::53, domains example.org ~corp.example"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := (Link{}).String(); got != "servers none" {
		t.Fatalf("empty: %q", got)
	}
	// Order matters: resolved asks its servers in turn.
	swapped := Link{Servers: []netip.Addr{l.Servers[1], l.Servers[0]}, Domains: l.Domains}
	if l.Equal(swapped) || !l.Equal(l) || !(Link{}).Empty() || l.Empty() {
		t.Fatal("Equal or Empty wrong")
	}
}
