package neutron

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckPools(t *testing.T) {
	for _, c := range []struct {
		o    CreateNetworkOpts
		want string // "" for accepted
	}{
		{CreateNetworkOpts{SubnetPool: "p", PrefixLen: 26, SubnetPool6: "q", PrefixLen6: 64}, ""},
		{CreateNetworkOpts{SubnetPool: "p", Subnet: netip.MustParsePrefix("10.0.0.0/24")}, "not both"},
		{CreateNetworkOpts{SubnetPool: "p", NoIPv4: true}, "IPv6-only"},
		{CreateNetworkOpts{SubnetPool6: "q", IPv6: netip.MustParsePrefix("fd00::/64")}, "not both"},
		{CreateNetworkOpts{PrefixLen6: 64}, "needs --ipv6-subnet-pool"},
		{CreateNetworkOpts{SubnetPool: "p", PrefixLen: 33}, "out of range"},
	} {
		err := checkPools(c.o)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: got %v, want %q", c.o, err, c.want)
		}
	}
}
