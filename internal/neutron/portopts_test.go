package neutron

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAddressPair(t *testing.T) {
	for in, want := range map[string]AddressPair{
		"10.0.0.50":                     {IP: "10.0.0.50"},
		"10.0.0.0/24":                   {IP: "10.0.0.0/24"},
		"10.0.0.50/FA:16:3E:00:00:01":   {IP: "10.0.0.50", MAC: "fa:16:3e:00:00:01"},
		"10.0.0.0/24/fa:16:3e:00:00:01": {IP: "10.0.0.0/24", MAC: "fa:16:3e:00:00:01"},
		"fd00::50":                      {IP: "fd00::50"},
		"fd00::50/fa:16:3e:00:00:01":    {IP: "fd00::50", MAC: "fa:16:3e:00:00:01"},
		"fd00::/64":                     {IP: "fd00::/64"},
	} {
		got, err := ParseAddressPair(in)
		if err != nil || got != want {
			t.Errorf("ParseAddressPair(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "web", "10.0.0.5/24", "10.0.0.300", "10.0.0.5/zz:16:3e:00:00:01", "fe80::1%eth0", "10.0.0.5/"} {
		if got, err := ParseAddressPair(in); err == nil {
			t.Errorf("ParseAddressPair(%q) = %+v, want an error", in, got)
		}
	}
}

func TestDNSLabel(t *testing.T) {
	for in, want := range map[string]string{
		"web1":                         "web1",
		"Web_1":                        "web-1",
		"db.example.org":               "db",
		"-x-":                          "x",
		"___":                          "",
		"":                             "",
		"héllo":                        "h-llo",
		strings.Repeat("a", 70):        strings.Repeat("a", 63),
		strings.Repeat("a", 62) + "-b": strings.Repeat("a", 62),
	} {
		if got := DNSLabel(in); got != want {
			t.Errorf("DNSLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPortRequestOptions(t *testing.T) {
	r := PortRequest{NetworkID: "n", AttachmentID: "a", VIFID: "v", Options: PortOptions{
		AllowedAddresses: []AddressPair{{IP: "10.0.0.50"}, {IP: "10.0.1.0/24", MAC: "fa:16:3e:00:00:01"}},
		QoSPolicyID:      "q", DNSName: "web1",
	}}
	b, err := r.build()
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.ToPortCreateMap()
	if err != nil {
		t.Fatal(err)
	}
	p := m["port"].(map[string]any)
	if p["qos_policy_id"] != "q" || p["dns_name"] != "web1" {
		t.Errorf("port = %v", p)
	}
	if _, ok := p["port_security_enabled"]; ok {
		t.Errorf("port security asked for without NoPortSecurity: %v", p)
	}
	pairs, _ := p["allowed_address_pairs"].([]any)
	if len(pairs) != 2 || !reflect.DeepEqual(pairs[1], map[string]any{"ip_address": "10.0.1.0/24", "mac_address": "fa:16:3e:00:00:01"}) {
		t.Errorf("allowed_address_pairs = %#v", p["allowed_address_pairs"])
	}

	off := PortRequest{NetworkID: "n", AttachmentID: "a", VIFID: "v", Mode: ModeBindingProfile, VLAN: 5, Options: PortOptions{NoPortSecurity: true}}
	b, err = off.build()
	if err != nil {
		t.Fatal(err)
	}
	m, _ = b.ToPortCreateMap()
	p = m["port"].(map[string]any)
	if ps, ok := p["port_security_enabled"].(**bool); !ok || **ps {
		t.Errorf("port_security_enabled = %#v, want false", p["port_security_enabled"])
	}
	if sg, ok := p["security_groups"].([]any); !ok || len(sg) != 0 {
		t.Errorf("security_groups = %#v, want []", p["security_groups"])
	}
	if p["binding:profile"] == nil {
		t.Errorf("binding:profile lost: %v", p)
	}

	for _, bad := range []PortOptions{
		{NoPortSecurity: true, AllowedAddresses: []AddressPair{{IP: "10.0.0.5"}}},
	} {
		r := PortRequest{NetworkID: "n", AttachmentID: "a", VIFID: "v", Options: bad}
		if _, err := r.build(); err == nil {
			t.Errorf("build(%+v) took it", bad)
		}
	}
	r = PortRequest{NetworkID: "n", AttachmentID: "a", VIFID: "v", SecurityGroups: []string{"g"}, Options: PortOptions{NoPortSecurity: true}}
	if _, err := r.build(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("security groups with no port security: %v", err)
	}
}
