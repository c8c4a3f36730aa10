package pool

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

// A pool shrinks for the refusals that more requests would not cure, told by their kind
// however the engine wrapped them, and for no other.
func TestExhausted(t *testing.T) {
	refusal := func(kind error, typ string) error {
		err := &neutron.Error{Op: "create 4 ports", Status: 409, Type: typ, Kind: kind, Err: errors.New("HTTP 409")}
		return fmt.Errorf("neutron ports for 4 attachments: %w", err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"quota", refusal(neutron.ErrOverQuota, "OverQuota"), "quota"},
		{"addresses", refusal(neutron.ErrNoAddresses, "IpAddressGenerationFailure"), "no-addresses"},
		{"after a failed rollback", fmt.Errorf("%w (and rollback failed: %v; run ovn-docker gc)",
			refusal(neutron.ErrOverQuota, "OverQuota"), errors.New("timeout")), "quota"},
		{"another conflict", refusal(neutron.ErrConflict, "IpAddressInUse"), ""},
		{"a concurrent update", refusal(neutron.ErrConcurrentUpdate, "StaleDataError"), ""},
		{"words are not a kind", errors.New("Quota exceeded: IpAddressGenerationFailure"), ""},
	} {
		if got := exhausted(tc.err); got != tc.want {
			t.Errorf("%s: exhausted(%v) = %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestFits: a pool's interface serves a request only without addresses or port options
// of its own; a hostname's dns_name is no reason for the cold path (given afterwards).
func TestFits(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  engine.Request
		want bool
	}{
		{"nothing asked", engine.Request{}, true},
		{"a dns_name only", engine.Request{Port: neutron.PortOptions{DNSName: "web-1"}}, true},
		{"a fixed address", engine.Request{FixedIPs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}}, false},
		{"an allowed address", engine.Request{Port: neutron.PortOptions{AllowedAddresses: []neutron.AddressPair{{IP: "10.0.0.9"}}}}, false},
		{"a QoS policy", engine.Request{Port: neutron.PortOptions{QoSPolicyID: "q"}}, false},
		{"no port security", engine.Request{Port: neutron.PortOptions{NoPortSecurity: true}}, false},
	} {
		if got := Fits(tc.req); got != tc.want {
			t.Errorf("%s: Fits = %v, want %v", tc.name, got, tc.want)
		}
	}
}
