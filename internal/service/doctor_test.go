package service

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ovn-docker/ovn-docker/internal/osauth"
)

// keystoneAt is a Keystone that answers with its clock off by skew.
func keystoneAt(t *testing.T, skew time.Duration) *osauth.Session {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
	}))
	t.Cleanup(srv.Close)
	return &osauth.Session{Provider: &gophercloud.ProviderClient{IdentityEndpoint: srv.URL, HTTPClient: *srv.Client()}}
}

func TestDoctorClock(t *testing.T) {
	for _, c := range []struct {
		skew time.Duration
		ok   bool
	}{{0, true}, {-10 * time.Second, true}, {2 * time.Minute, false}, {-5 * time.Minute, false}} {
		d := &doctor{s: New(Config{})}
		d.clock(context.Background(), keystoneAt(t, c.skew))
		got := d.out[0]
		if got.Name != "clock" || got.OK != c.ok {
			t.Fatalf("skew %s: %+v", c.skew, got)
		}
		if !c.ok && (!strings.Contains(got.Detail, "from Keystone's") || !strings.Contains(got.Fix, "timedatectl set-ntp true")) {
			t.Fatalf("skew %s: %+v", c.skew, got)
		}
	}
}

// TestActivatePlugin: the plugin check asks the socket what dockerd would ask.
func TestActivatePlugin(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ovn.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/Plugin.Activate" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"Implements":["NetworkDriver","IpamDriver"]}`))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	impl, err := activatePlugin(context.Background(), sock)
	if err != nil || !strings.Contains(impl, "IpamDriver") {
		t.Fatalf("%q %v", impl, err)
	}
	if _, err := activatePlugin(context.Background(), filepath.Join(t.TempDir(), "none.sock")); err == nil {
		t.Fatal("a missing socket answered")
	}
}

func TestVsctlNamesTheDatabase(t *testing.T) {
	if got := New(Config{OVSDB: DefaultOVSDB}).vsctl(); got != "ovs-vsctl" {
		t.Fatal(got)
	}
	if got := New(Config{OVSDB: "unix:/x/db.sock"}).vsctl(); got != "ovs-vsctl --db=unix:/x/db.sock" {
		t.Fatal(got)
	}
}

// TestVIFFromMetadata: network_data.json names the port of the NIC with the MAC.
func TestVIFFromMetadata(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"links":[{"id":"tapa","ethernet_mac_address":"fa:16:3e:00:00:02","vif_id":"other"},
			{"id":"tapb","ethernet_mac_address":"FA:16:3E:00:00:01","vif_id":"9e323636-929e-473f-ba42-1d3b7b0f2662","mtu":1442}]}`))
	}))
	defer srv.Close()
	mac, _ := net.ParseMAC("fa:16:3e:00:00:01")
	vif, err := vifFromMetadata(context.Background(), srv.URL, mac)
	if err != nil || vif != "9e323636-929e-473f-ba42-1d3b7b0f2662" {
		t.Fatalf("%q %v", vif, err)
	}
	unknown, _ := net.ParseMAC("fa:16:3e:00:00:09")
	if _, err := vifFromMetadata(context.Background(), srv.URL, unknown); err == nil || !strings.Contains(err.Error(), "no NIC with MAC fa:16:3e:00:00:09") {
		t.Fatalf("unknown MAC: %v", err)
	}
}
