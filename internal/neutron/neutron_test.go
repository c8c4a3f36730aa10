package neutron

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestFreePrefix(t *testing.T) {
	space, start := pfx("10.0.0.0/8"), netip.MustParseAddr("10.10.0.0")
	for _, tc := range []struct {
		name string
		used []string
		want string
	}{
		{"nothing used", nil, "10.10.0.0/24"},
		{"below start ignored", []string{"10.0.0.0/16", "10.9.255.0/24"}, "10.10.0.0/24"},
		{"first taken", []string{"10.10.0.0/24"}, "10.10.1.0/24"},
		{"a /23 covers two", []string{"10.10.0.0/23"}, "10.10.2.0/24"},
		{"a /28 inside blocks its /24", []string{"10.10.0.16/28", "10.10.1.128/25"}, "10.10.2.0/24"},
		{"a wider range blocks all of it", []string{"10.10.0.0/16"}, "10.11.0.0/24"},
		{"other spaces irrelevant", []string{"192.168.10.0/24", "172.16.0.0/12"}, "10.10.0.0/24"},
		{"a supernet of the space", []string{"0.0.0.0/0"}, ""},
	} {
		var used []netip.Prefix
		for _, u := range tc.used {
			used = append(used, pfx(u))
		}
		got, err := FreePrefix(space, 24, start, used)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "no free /24") {
				t.Errorf("%s: got %v, %v; want a 'no free' error", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != pfx(tc.want) {
			t.Errorf("%s: got %v, %v; want %s", tc.name, got, err, tc.want)
		}
	}
}

func TestFreePrefixExhaustsTheSpace(t *testing.T) {
	// A /22 holds four /24s; with the last three taken from a start past the first, none is left.
	used := []netip.Prefix{pfx("10.1.1.0/24"), pfx("10.1.2.0/24"), pfx("10.1.3.0/24")}
	if got, err := FreePrefix(pfx("10.1.0.0/22"), 24, netip.MustParseAddr("10.1.1.0"), used); err == nil {
		t.Fatalf("got %s, want no free /24", got)
	}
	if got, err := FreePrefix(pfx("10.1.0.0/22"), 24, netip.MustParseAddr("10.1.0.0"), used); err != nil || got != pfx("10.1.0.0/24") {
		t.Fatalf("got %v, %v; want 10.1.0.0/24", got, err)
	}
	// The top of the address space ends the search instead of wrapping to 0.0.0.0.
	if got, err := FreePrefix(pfx("255.255.255.0/24"), 24, netip.MustParseAddr("255.255.255.0"), []netip.Prefix{pfx("255.255.255.0/24")}); err == nil {
		t.Fatalf("got %s at the top of the space, want an error", got)
	}
	// An unaligned start is aligned down.
	if got, err := FreePrefix(pfx("10.0.0.0/8"), 24, netip.MustParseAddr("10.10.0.77"), nil); err != nil || got != pfx("10.10.0.0/24") {
		t.Fatalf("got %v, %v; want 10.10.0.0/24", got, err)
	}
}

func TestLastAddr(t *testing.T) {
	for p, want := range map[string]string{
		"10.1.2.0/24": "10.1.2.255", "10.1.2.77/24": "10.1.2.255", "10.0.0.0/8": "10.255.255.255",
		"192.168.1.8/29": "192.168.1.15",
	} {
		if got := lastAddr(pfx(p)); got != netip.MustParseAddr(want) {
			t.Errorf("lastAddr(%s) = %s, want %s", p, got, want)
		}
	}
}

func TestValidateNetworkName(t *testing.T) {
	for _, ok := range []string{"net1", "my net", "réseau-ü", strings.Repeat("n", 255), "4395c32f-3bd4-4209-821a-ad6abf8bd26"} {
		if err := ValidateNetworkName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for name, want := range map[string]string{
		"":                                     "empty",
		strings.Repeat("n", 256):               "at most 255",
		"4395c32f-3bd4-4209-821a-ad6abf8bd265": "looks like an ID",
		"4395C32F-3BD4-4209-821A-AD6ABF8BD265": "looks like an ID",
		"a\tb":                                 "control character",
		"a\x7fb":                               "control character",
	} {
		if err := ValidateNetworkName(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error with %q", name, err, want)
		}
	}
}

func TestCheckSubnet(t *testing.T) {
	for _, tc := range []struct {
		p      string
		family int
		want   string // "" for valid
	}{
		{"10.1.0.0/24", 4, ""},
		{"10.1.0.0/29", 4, ""},
		{"10.0.0.0/8", 4, ""},
		{"10.1.0.0/30", 4, "too small"},
		{"10.0.0.0/7", 4, "too large"},
		{"fd00::/64", 4, "not IPv4"},
		{"224.0.0.0/24", 4, "not a unicast"},
		{"127.0.0.0/24", 4, "not a unicast"},
		{"0.0.0.0/24", 4, "not a unicast"},
		{"fd00::/64", 6, ""},
		{"fd00::/120", 6, ""},
		{"fd00::/121", 6, "too small"},
		{"10.1.0.0/24", 6, "not IPv6"},
		{"::ffff:10.1.0.0/120", 6, "not IPv6"},
		{"ff02::/64", 6, "not a unicast"},
		{"::/64", 6, "not a unicast"},
	} {
		err := checkSubnet(pfx(tc.p), tc.family)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("checkSubnet(%s, %d) = %v, want %q", tc.p, tc.family, err, tc.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeTrunk, "trunk": ModeTrunk, "binding-profile": ModeBindingProfile} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"Trunk", "binding_profile", "vlan"} {
		if _, err := ParseMode(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseMode(%q): got %v, want an error naming it", bad, err)
		}
	}
}

func respErr(code int, body string) error {
	return gophercloud.ErrUnexpectedResponseCode{Method: "POST", URL: "http://127.0.0.1:9696/v2.0/ports",
		Expected: []int{201}, Actual: code, Body: []byte(body)}
}

func TestNeutronMessageAndType(t *testing.T) {
	quota := respErr(409, `{"NeutronError": {"type": "OverQuota", "message": "Quota exceeded for resources: ['port'].", "detail": ""}}`)
	wrapped := fmt.Errorf("create: %w", quota)
	noMsg := respErr(404, `{"NeutronError": {"type": "PortNotFound", "message": ""}}`)
	html := respErr(502, `<html>Bad Gateway</html>`)
	plain := errors.New("dial tcp 127.0.0.1:9696: connection refused")
	for _, tc := range []struct {
		err       error
		msg, typ_ string
	}{
		{quota, "Quota exceeded for resources: ['port']. (OverQuota, HTTP 409)", "OverQuota"},
		{wrapped, "Quota exceeded for resources: ['port']. (OverQuota, HTTP 409)", "OverQuota"},
		{noMsg, "HTTP 404 from POST http://127.0.0.1:9696/v2.0/ports", "PortNotFound"},
		{html, "HTTP 502 from POST http://127.0.0.1:9696/v2.0/ports", ""},
		{plain, plain.Error(), ""},
	} {
		if got := neutronMessage(tc.err); got != tc.msg {
			t.Errorf("neutronMessage(%v) = %q, want %q", tc.err, got, tc.msg)
		}
		if got := neutronType(tc.err); got != tc.typ_ {
			t.Errorf("neutronType(%v) = %q, want %q", tc.err, got, tc.typ_)
		}
	}
}

func TestWrap(t *testing.T) {
	if wrap(nil, "x") != nil {
		t.Fatal("wrap(nil) is not nil")
	}
	nf := wrap(respErr(http.StatusNotFound, `{"NeutronError": {"type": "NetworkNotFound", "message": "Network n1 could not be found."}}`), "get network %s", "n1")
	if !errors.Is(nf, ErrNotFound) {
		t.Fatal("a 404 is not ErrNotFound")
	}
	if want := "get network n1: Network n1 could not be found. (NetworkNotFound, HTTP 404)"; nf.Error() != want {
		t.Fatalf("message %q, want %q", nf.Error(), want)
	}
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(nf, &ue) || ue.Actual != 404 {
		t.Fatal("the gophercloud error is not reachable with errors.As")
	}
	conflict := wrap(respErr(http.StatusConflict, `{"NeutronError": {"type": "InUse", "message": "in use"}}`), "delete")
	if errors.Is(conflict, ErrNotFound) {
		t.Fatal("a 409 is ErrNotFound")
	}
	if !isConflict(conflict) || isNotFound(conflict) || isForbidden(conflict) {
		t.Fatal("status helpers do not read the wrapped code")
	}
}

func TestPortRequestBuild(t *testing.T) {
	ok := PortRequest{NetworkID: "net", AttachmentID: "att", VIFID: "vif"}
	for _, bad := range []PortRequest{
		{AttachmentID: "att", VIFID: "vif"}, {NetworkID: "net", VIFID: "vif"}, {NetworkID: "net", AttachmentID: "att"},
		{NetworkID: "net", AttachmentID: "att", VIFID: "vif", Mode: "vlan"},
		{NetworkID: "net", AttachmentID: "att", VIFID: "vif", Mode: ModeBindingProfile},
		{NetworkID: "net", AttachmentID: "att", VIFID: "vif", Mode: ModeBindingProfile, VLAN: 4095},
	} {
		if _, err := bad.build(); err == nil {
			t.Errorf("build(%+v): no error", bad)
		}
	}

	b, err := ok.build()
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.ToPortCreateMap()
	if err != nil {
		t.Fatal(err)
	}
	port := m["port"].(map[string]any)
	if port["name"] != "ovn-docker-att" || port["description"] != "ovn-docker vm=vif" || port["device_owner"] != DeviceOwner ||
		port["network_id"] != "net" {
		t.Fatalf("trunk-mode port %v", port)
	}
	for _, absent := range []string{"device_id", "binding:profile", "security_groups"} {
		if _, has := port[absent]; has {
			t.Errorf("trunk-mode port has %s: %v", absent, port)
		}
	}

	bp := ok
	bp.Mode, bp.VLAN, bp.SecurityGroups = ModeBindingProfile, 42, []string{}
	b, err = bp.build()
	if err != nil {
		t.Fatal(err)
	}
	if _, isExt := b.(portsbinding.CreateOptsExt); !isExt {
		t.Fatalf("binding-profile builder is %T", b)
	}
	m, err = b.ToPortCreateMap()
	if err != nil {
		t.Fatal(err)
	}
	port = m["port"].(map[string]any)
	prof, _ := port["binding:profile"].(map[string]any)
	if prof["parent_name"] != "vif" || prof["tag"] != 42 {
		t.Fatalf("binding:profile %v", port["binding:profile"])
	}
	// An empty, non-nil list is sent as null, which Neutron takes as "no security group".
	if sg, has := port["security_groups"]; !has || sg != nil {
		t.Fatalf("security_groups %#v, want present and null", sg)
	}
	bp.SecurityGroups = []string{"sg1"}
	b, _ = bp.build()
	m, _ = b.ToPortCreateMap()
	if sg := m["port"].(map[string]any)["security_groups"]; fmt.Sprint(sg) != "[sg1]" {
		t.Fatalf("security_groups %#v, want [sg1]", sg)
	}
	var _ ports.CreateOptsBuilder = b
}

func TestRawPort(t *testing.T) {
	r := rawPort{ID: "p", MACAddress: "fa:16:3e:00:00:01"}
	r.FixedIPs = append(r.FixedIPs, struct {
		SubnetID  string `json:"subnet_id"`
		IPAddress string `json:"ip_address"`
	}{"s4", "10.1.0.5"}, struct {
		SubnetID  string `json:"subnet_id"`
		IPAddress string `json:"ip_address"`
	}{"s6", "fd00::5"})
	p, err := r.port()
	if err != nil {
		t.Fatal(err)
	}
	if p.MAC.String() != "fa:16:3e:00:00:01" || len(p.FixedIPs) != 2 || p.FixedIPs[1].IP != netip.MustParseAddr("fd00::5") {
		t.Fatalf("port %+v", p)
	}
	if _, err := (rawPort{ID: "p", MACAddress: "nope"}).port(); err == nil {
		t.Fatal("bad MAC accepted")
	}
	r.FixedIPs[0].IPAddress = "10.1.0.500"
	if _, err := r.port(); err == nil {
		t.Fatal("bad address accepted")
	}
}

func TestToNetwork(t *testing.T) {
	var raw networkWithMTU
	raw.ID, raw.Name, raw.MTU = "n1", "net", 1442
	subs := []subnets.Subnet{
		{ID: "s6", NetworkID: "n1", CIDR: "fd00::/64", IPVersion: 6, GatewayIP: "fd00::1"},
		{ID: "other", NetworkID: "n2", CIDR: "10.9.0.0/24", IPVersion: 4},
		{ID: "s4", NetworkID: "n1", CIDR: "10.1.0.0/24", IPVersion: 4, GatewayIP: ""},
	}
	n := toNetwork(raw, subs)
	if n.MTU != 1442 || len(n.Subnets) != 2 || n.Subnets[0].ID != "s4" || n.Subnets[1].ID != "s6" {
		t.Fatalf("network %+v", n)
	}
	if n.Subnets[0].Gateway.IsValid() || n.Subnets[1].Gateway != netip.MustParseAddr("fd00::1") {
		t.Fatalf("gateways %v %v", n.Subnets[0].Gateway, n.Subnets[1].Gateway)
	}
	if got := n.CIDRs(); len(got) != 2 || got[0] != "10.1.0.0/24" || got[1] != "fd00::/64" {
		t.Fatalf("CIDRs %v", got)
	}
	if s, ok := n.SubnetByID("s6"); !ok || s.IPVersion != 6 {
		t.Fatalf("SubnetByID: %+v %v", s, ok)
	}
	if _, ok := n.SubnetByID("other"); ok {
		t.Fatal("SubnetByID found another network's subnet")
	}
}

func TestTrunkVLANs(t *testing.T) {
	tr := &Trunk{Subports: map[string]int{"a": 100, "b": 200}}
	v := tr.VLANs()
	if len(v) != 2 || !v[100] || !v[200] || v[300] {
		t.Fatalf("VLANs %v", v)
	}
}
