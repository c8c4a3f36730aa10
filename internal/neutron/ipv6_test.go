package neutron

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestIPv6Modes(t *testing.T) {
	for _, c := range []struct {
		addr, ra string
		dhcp     bool
		wantA    string
		wantR    string
		err      string
	}{
		{"", "", true, ModeStateful, ModeStateful, ""}, // what ovn-docker always made
		{"", "", false, "", "", ""},                    // DHCP off: static
		{"slaac", "slaac", true, "slaac", "slaac", ""},
		{"slaac", "", true, "slaac", "", ""}, // an outside router advertises
		{"", "dhcpv6-stateless", true, "", "dhcpv6-stateless", ""},
		{"dhcpv6-stateless", "dhcpv6-stateless", true, "dhcpv6-stateless", "dhcpv6-stateless", ""},
		{"none", "none", true, "", "", ""},
		{"none", "", false, "", "", ""},
		{"slaac", "slaac", false, "slaac", "slaac", ""}, // SLAAC needs no DHCP
		{"dhcpv6-stateful", "", false, "", "", "needs DHCP"},
		{"", "dhcpv6-stateless", false, "", "", "needs DHCP"},
		{"slaac", "dhcpv6-stateful", true, "", "", "both the same"},
		{"SLAAC", "", true, "", "", "want one of"},
		{"", "static", true, "", "", "--ipv6-ra-mode"},
	} {
		a, r, err := IPv6Modes(c.addr, c.ra, c.dhcp)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("IPv6Modes(%q, %q, %v) = %v, want an error with %q", c.addr, c.ra, c.dhcp, err, c.err)
			}
			continue
		}
		if err != nil || a != c.wantA || r != c.wantR {
			t.Errorf("IPv6Modes(%q, %q, %v) = %q, %q, %v; want %q, %q", c.addr, c.ra, c.dhcp, a, r, err, c.wantA, c.wantR)
		}
	}
}

// subnetRecorder is a Neutron that makes networks and subnets and keeps the subnets
// asked for.
func subnetRecorder(t *testing.T) (*Client, *[]map[string]any) {
	var subs []map[string]any
	c := fakeNeutron(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/networks"):
			io.WriteString(w, `{"networks": []}`)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/networks"):
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"network": {"id": "n1", "name": "V6", "mtu": 1442}}`)
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/subnets"):
			var body struct {
				Subnet map[string]any `json:"subnet"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				t.Error(err)
			}
			subs = append(subs, body.Subnet)
			s := body.Subnet
			s["id"] = fmt.Sprintf("s%d", len(subs))
			if s["enable_dhcp"] == nil {
				s["enable_dhcp"] = true
			}
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]any{"subnet": s})
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusNotFound)
		}
	})
	return c, &subs
}

func TestCreateIPv6OnlyNetwork(t *testing.T) {
	c, subs := subnetRecorder(t)
	n, note, err := c.CreateNetwork(context.Background(), CreateNetworkOpts{Name: "V6", NoIPv4: true,
		IPv6: netip.MustParsePrefix("fd00:77::/64"), IPv6AddressMode: "slaac", IPv6RAMode: "slaac"})
	if err != nil {
		t.Fatal(err)
	}
	if len(*subs) != 1 {
		t.Fatalf("%d subnets asked for, want the IPv6 one only: %v", len(*subs), *subs)
	}
	s := (*subs)[0]
	if s["ip_version"] != float64(6) || s["cidr"] != "fd00:77::/64" || s["ipv6_address_mode"] != "slaac" ||
		s["ipv6_ra_mode"] != "slaac" || s["enable_dhcp"] != true {
		t.Fatalf("IPv6 subnet asked for: %v", s)
	}
	if len(n.Subnets) != 1 || n.Subnets[0].IPVersion != 6 || n.Subnets[0].IPv6AddressMode != "slaac" {
		t.Fatalf("network %+v", n)
	}
	if !strings.Contains(note, "IPv6 only") || !strings.Contains(note, "slaac") {
		t.Fatalf("note %q", note)
	}
}

func TestCreateDualStackNoDHCP(t *testing.T) {
	c, subs := subnetRecorder(t)
	_, note, err := c.CreateNetwork(context.Background(), CreateNetworkOpts{Name: "V6", NoDHCP: true,
		Subnet: netip.MustParsePrefix("10.9.0.0/24"), IPv6: netip.MustParsePrefix("fd00:78::/64")})
	if err != nil {
		t.Fatal(err)
	}
	if len(*subs) != 2 {
		t.Fatalf("%d subnets asked for, want 2: %v", len(*subs), *subs)
	}
	for _, s := range *subs {
		if s["enable_dhcp"] != false {
			t.Errorf("subnet with DHCP: %v", s)
		}
		if _, ok := s["ipv6_address_mode"]; ok {
			t.Errorf("DHCP off yet an IPv6 mode (static is no mode): %v", s)
		}
	}
	if !strings.Contains(note, "static") || !strings.Contains(note, "DHCP off") {
		t.Fatalf("note %q", note)
	}
}

func TestCreateNetworkFamiliesRefused(t *testing.T) {
	c := fakeNeutron(t, nil, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("Neutron asked %s %s for a refused network", r.Method, r.URL)
	})
	v6 := netip.MustParsePrefix("fd00:79::/64")
	for _, tc := range []struct {
		o   CreateNetworkOpts
		err string
	}{
		{CreateNetworkOpts{Name: "x", NoIPv4: true}, "needs --ipv6-subnet"},
		{CreateNetworkOpts{Name: "x", NoIPv4: true, IPv6: v6, Subnet: netip.MustParsePrefix("10.0.0.0/24")}, "drop --subnet"},
		{CreateNetworkOpts{Name: "x", IPv6AddressMode: "slaac"}, "need --ipv6-subnet"},
		{CreateNetworkOpts{Name: "x", IPv6: netip.MustParsePrefix("fd00:79::/80"), IPv6AddressMode: "slaac"}, "needs a /64"},
		{CreateNetworkOpts{Name: "x", IPv6: v6, NoDHCP: true, IPv6AddressMode: "dhcpv6-stateful"}, "needs DHCP"},
	} {
		if _, _, err := c.CreateNetwork(context.Background(), tc.o); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.err)
		}
	}
}
