package neutron

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"testing"
)

// Neighbors asks once, for one page of the network's enabled ports with only the fields
// a proof needs, and does not follow the next page.
func TestNeighbors(t *testing.T) {
	var queries []url.Values
	body := `{"ports": [
	  {"id": "a", "device_owner": "trunk:subport", "status": "ACTIVE", "port_security_enabled": true, "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.7"}, {"subnet_id": "s6", "ip_address": "fd00::7"}]},
	  {"id": "b", "device_owner": "compute:nova", "status": "DOWN", "port_security_enabled": false, "fixed_ips": [{"subnet_id": "s", "ip_address": "10.0.0.8"}]},
	  {"id": "c", "device_owner": "network:distributed", "fixed_ips": []}],
	  "ports_links": [{"rel": "next", "href": "http://example.invalid/v2.0/ports?marker=c"}]}`
	c := fakeNeutron(t, nil, func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.Query())
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	})
	got, err := c.Neighbors(context.Background(), "n1", 16)
	if err != nil {
		t.Fatal(err)
	}
	if len(queries) != 1 {
		t.Fatalf("%d requests, want one page only", len(queries))
	}
	q := queries[0]
	if q.Get("network_id") != "n1" || q.Get("admin_state_up") != "true" || q.Has("status") || q.Get("limit") != "16" || !slices.Equal(q["fields"], neighborFields) {
		t.Fatalf("query %v", q)
	}
	if len(got) != 3 || got[0].PortID != "a" || !slices.Equal(got[0].IPs, []netip.Addr{netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("fd00::7")}) ||
		!got[0].Active || got[1].Active || !got[0].PortSecurity || got[1].PortSecurity || !got[2].PortSecurity || got[2].DeviceOwner != "network:distributed" {
		t.Fatalf("neighbors %+v", got)
	}
}
