package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

func TestPortAddresses(t *testing.T) {
	dual := &neutron.Network{Name: "d", Subnets: []neutron.Subnet{
		{ID: "s4", IPVersion: 4, CIDR: netip.MustParsePrefix("10.1.0.0/24")},
		{ID: "s6", IPVersion: 6, CIDR: netip.MustParsePrefix("fd00:1::/64")},
	}}
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name string
		want []netip.Addr
		out  string // SubnetID=IP, ...
		err  string
	}{
		{"none asked: Neutron's choice", nil, "", ""},
		{"v4 only: v6 still allocated", []netip.Addr{a("10.1.0.9")}, "s4=10.1.0.9 s6=invalid IP", ""},
		{"v6 only: v4 still allocated", []netip.Addr{a("fd00:1::9")}, "s6=fd00:1::9 s4=invalid IP", ""},
		{"both", []netip.Addr{a("10.1.0.9"), a("fd00:1::9")}, "s4=10.1.0.9 s6=fd00:1::9", ""},
		{"v4-mapped is IPv4", []netip.Addr{a("::ffff:10.1.0.9")}, "s4=10.1.0.9 s6=invalid IP", ""},
		{"outside", []netip.Addr{a("10.2.0.9")}, "", "address 10.2.0.9 is in none of network d's subnets (10.1.0.0/24, fd00:1::/64)"},
		{"two of a family", []netip.Addr{a("10.1.0.9"), a("10.1.0.10")}, "", "two IPv4 addresses"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := portAddresses(dual, tc.want)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, f := range got {
				parts = append(parts, f.SubnetID+"="+f.IP.String())
			}
			if s := strings.Join(parts, " "); s != tc.out {
				t.Fatalf("fixed_ips %q, want %q", s, tc.out)
			}
		})
	}
}
