package neutron

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"testing"
)

// RouterPortAt asks once, filtered on the network and the address, and takes only a
// router interface.
func TestRouterPortAt(t *testing.T) {
	var queries []string
	body := `{"ports": [
	  {"id": "dhcp", "mac_address": "fa:16:3e:00:00:01", "device_owner": "network:dhcp", "fixed_ips": [{"subnet_id": "s", "ip_address": "fd00::1"}]},
	  {"id": "r", "mac_address": "fa:16:3e:00:00:02", "device_owner": "network:router_interface_distributed", "fixed_ips": [{"subnet_id": "s", "ip_address": "fd00::1"}]}]}`
	c := fakeNeutron(t, nil, func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("network_id") == "none" {
			io.WriteString(w, `{"ports": []}`)
			return
		}
		io.WriteString(w, body)
	})
	p, err := c.RouterPortAt(context.Background(), "n1", netip.MustParseAddr("fd00::1"))
	if err != nil || p.ID != "r" {
		t.Fatalf("RouterPortAt = %+v, %v; want port r", p, err)
	}
	if len(queries) != 1 || queries[0] != "fixed_ips=ip_address%3Dfd00%3A%3A1&network_id=n1" {
		t.Fatalf("queries %q", queries)
	}
	if _, err := c.RouterPortAt(context.Background(), "none", netip.MustParseAddr("fd00::1")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no port: %v, want ErrNotFound", err)
	}
}
