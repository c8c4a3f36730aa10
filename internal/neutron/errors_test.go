package neutron

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// kinds are the errors callers tell apart; each refusal below is exactly one of them
// (and ErrConflict too when it is a 409).
var kinds = []error{ErrNotFound, ErrForbidden, ErrConflict, ErrNetworkInUse, ErrPortInUse, ErrVLANInUse,
	ErrOverQuota, ErrNoAddresses, ErrConcurrentUpdate, ErrAddressInUse, ErrAddressInvalid}

// fakeNeutron is a Neutron endpoint answering every request with handler, and a client
// of it, so that errors come out of gophercloud exactly as they do from the real one.
func fakeNeutron(t *testing.T, rt func(http.RoundTripper) http.RoundTripper, handler http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	pc := &gophercloud.ProviderClient{
		EndpointLocator: func(gophercloud.EndpointOpts) (string, error) { return srv.URL + "/", nil },
	}
	if rt != nil {
		pc.HTTPClient = http.Client{Transport: rt(http.DefaultTransport)}
	}
	c, err := New(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// answer is a handler that gives every request the same status and body.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// Neutron's refusals, as its API writes them, each of one kind.
func TestErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   error // nil: none of the kinds
		msg    string
	}{
		{"over quota", 409, `{"NeutronError": {"type": "OverQuota", "message": "Quota exceeded for resources: ['port'].", "detail": ""}}`,
			ErrOverQuota, "Quota exceeded for resources: ['port']. (OverQuota, HTTP 409)"},
		{"no addresses", 409, `{"NeutronError": {"type": "IpAddressGenerationFailure", "message": "No more IP addresses available on network 0b1f2c3d-0000-4000-8000-000000000001.", "detail": ""}}`,
			ErrNoAddresses, "No more IP addresses available on network 0b1f2c3d-0000-4000-8000-000000000001. (IpAddressGenerationFailure, HTTP 409)"},
		{"no addresses in any subnet (IPAM)", 409, `{"NeutronError": {"type": "IpAddressGenerationFailureAllSubnets", "message": "No more IP addresses available.", "detail": ""}}`,
			ErrNoAddresses, "No more IP addresses available. (IpAddressGenerationFailureAllSubnets, HTTP 409)"},
		{"address taken (IPAM)", 409, `{"NeutronError": {"type": "IpAddressAlreadyAllocated", "message": "IP address 10.1.0.5 already allocated in subnet 5e2a.", "detail": ""}}`,
			ErrAddressInUse, "IP address 10.1.0.5 already allocated in subnet 5e2a. (IpAddressAlreadyAllocated, HTTP 409)"},
		{"address taken (core)", 409, `{"NeutronError": {"type": "IpAddressInUse", "message": "The IP address 10.1.0.5 is in use.", "detail": ""}}`,
			ErrAddressInUse, ""},
		{"address outside the network", 400, `{"NeutronError": {"type": "InvalidIpForNetwork", "message": "IP address 10.9.0.5 is not a valid IP for any of the subnets on the specified network.", "detail": ""}}`,
			ErrAddressInvalid, ""},
		{"stale data", 409, `{"NeutronError": {"type": "StaleDataError", "message": "x"}}`,
			ErrConcurrentUpdate, "x (StaleDataError, HTTP 409)"},
		{"trunk busy", 409, `{"NeutronError": {"type": "TrunkInErrorState", "message": "Trunk 7e1c is in error state. Attempt to resolve the error condition before proceeding.", "detail": ""}}`,
			ErrConcurrentUpdate, "Trunk 7e1c is in error state. Attempt to resolve the error condition before proceeding. (TrunkInErrorState, HTTP 409)"},
		{"network in use", 409, `{"NeutronError": {"type": "NetworkInUse", "message": "Unable to complete operation on network n1. There are one or more ports still in use on the network.", "detail": ""}}`,
			ErrNetworkInUse, "Unable to complete operation on network n1. There are one or more ports still in use on the network. (NetworkInUse, HTTP 409)"},
		{"port in use", 409, `{"NeutronError": {"type": "PortInUse", "message": "Unable to complete operation on port p1 for network n1. Port already has an attached device d1.", "detail": ""}}`,
			ErrPortInUse, "Unable to complete operation on port p1 for network n1. Port already has an attached device d1. (PortInUse, HTTP 409)"},
		{"port is a subport", 409, `{"NeutronError": {"type": "PortInUseAsSubPort", "message": "Port p1 is currently a subport for trunk t1.", "detail": ""}}`,
			ErrPortInUse, "Port p1 is currently a subport for trunk t1. (PortInUseAsSubPort, HTTP 409)"},
		{"vlan in use", 409, `{"NeutronError": {"type": "DuplicateSubPort", "message": "segmentation_type vlan and segmentation_id 101 already in use on trunk t1.", "detail": ""}}`,
			ErrVLANInUse, "segmentation_type vlan and segmentation_id 101 already in use on trunk t1. (DuplicateSubPort, HTTP 409)"},
		{"another conflict", 409, `{"NeutronError": {"type": "MacAddressInUse", "message": "Unable to complete operation for network n1. The mac address fa:16:3e:00:00:01 is in use.", "detail": ""}}`,
			ErrConflict, "Unable to complete operation for network n1. The mac address fa:16:3e:00:00:01 is in use. (MacAddressInUse, HTTP 409)"},
		{"a 409 from something else", 409, `<html>Conflict</html>`, ErrConflict, ""},
		{"policy", 403, `{"NeutronError": {"type": "PolicyNotAuthorized", "message": "(rule:create_port and rule:create_port:binding:profile) is disallowed by policy", "detail": ""}}`,
			ErrForbidden, "(rule:create_port and rule:create_port:binding:profile) is disallowed by policy (PolicyNotAuthorized, HTTP 403)"},
		{"not found", 404, `{"NeutronError": {"type": "NetworkNotFound", "message": "Network n1 could not be found.", "detail": ""}}`,
			ErrNotFound, "Network n1 could not be found. (NetworkNotFound, HTTP 404)"},
		// A type of the 409s' in an answer that is not a 409 is not that kind.
		{"quota type, but a 500", 500, `{"NeutronError": {"type": "OverQuota", "message": "m", "detail": ""}}`, nil, "m (OverQuota, HTTP 500)"},
		{"bad request", 400, `{"NeutronError": {"type": "InvalidInput", "message": "Invalid input for operation: bad.", "detail": ""}}`,
			nil, "Invalid input for operation: bad. (InvalidInput, HTTP 400)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeNeutron(t, nil, answer(tc.status, tc.body))
			reqs := []PortRequest{{NetworkID: "n1", AttachmentID: "a1", VIFID: "vif"}}
			_, err := c.CreatePorts(context.Background(), reqs)
			if err == nil {
				t.Fatal("no error")
			}
			// As the engine hands it on.
			err = fmt.Errorf("neutron ports for 1 attachments: %w", err)
			for _, k := range kinds {
				want := k == tc.want || k == ErrConflict && tc.status == http.StatusConflict
				if errors.Is(err, k) != want {
					t.Errorf("errors.Is(%v, %q) = %v, want %v", err, k, !want, want)
				}
			}
			var ne *Error
			if !errors.As(err, &ne) {
				t.Fatalf("%v is not a *neutron.Error", err)
			}
			if ne.Status != tc.status || ne.Kind != tc.want || ne.Op != "create 1 ports" {
				t.Errorf("status %d, kind %v, op %q; want %d, %v, %q", ne.Status, ne.Kind, ne.Op, tc.status, tc.want, "create 1 ports")
			}
			var rc gophercloud.ErrUnexpectedResponseCode
			if !errors.As(err, &rc) || rc.Actual != tc.status {
				t.Errorf("gophercloud's error is not reachable with errors.As: %v", err)
			}
			if tc.msg != "" {
				var b struct {
					NeutronError struct{ Type, Message string }
				}
				json.Unmarshal([]byte(tc.body), &b)
				typ, msg := b.NeutronError.Type, b.NeutronError.Message
				if ne.Type != typ || ne.Message != msg {
					t.Errorf("type %q, message %q; want %q, %q", ne.Type, ne.Message, typ, msg)
				}
				if want := "create 1 ports: " + tc.msg; ne.Error() != want {
					t.Errorf("message %q, want %q", ne.Error(), want)
				}
			}
		})
	}
}

// The calls that react to a kind themselves: trunk changes say ErrVLANInUse, a network
// with ports ErrNetworkInUse.
func TestCallsSayTheKind(t *testing.T) {
	ctx := context.Background()
	dup := answer(409, `{"NeutronError": {"type": "DuplicateSubPort", "message": "segmentation_type vlan and segmentation_id 101 already in use on trunk t1.", "detail": ""}}`)
	c := fakeNeutron(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet { // AddSubport reads the trunk after a 409: p1 is not on it
			io.WriteString(w, `{"trunk": {"id": "t1", "port_id": "vm", "sub_ports": []}}`)
			return
		}
		dup(w, r)
	})
	if err := c.AddSubport(ctx, "t1", "p1", 101); !errors.Is(err, ErrVLANInUse) {
		t.Errorf("AddSubport: %v, want ErrVLANInUse", err)
	}
	if err := c.AddSubports(ctx, "t1", []Subport{{PortID: "p1", VLAN: 101}, {PortID: "p2", VLAN: 102}}); !errors.Is(err, ErrVLANInUse) {
		t.Errorf("AddSubports: %v, want ErrVLANInUse", err)
	}
	c = fakeNeutron(t, nil, answer(409, `{"NeutronError": {"type": "NetworkInUse", "message": "Unable to complete operation on network n1. There are one or more ports still in use on the network.", "detail": ""}}`))
	if err := c.DeleteNetwork(ctx, "n1"); !errors.Is(err, ErrNetworkInUse) || errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteNetwork: %v, want ErrNetworkInUse", err)
	}
}

// The transport retries the 409s the classifier calls concurrent updates, and only
// those; once it gives up, the caller reads the kind.
func TestTransportAndClassifierAgree(t *testing.T) {
	for _, tc := range []struct {
		typ   string
		tries int
		want  error
	}{
		{"StaleDataError", 6, ErrConcurrentUpdate},
		{"RetryRequest", 6, ErrConcurrentUpdate},
		{"OverQuota", 1, ErrOverQuota},
		{"DuplicateSubPort", 1, ErrVLANInUse},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			var mu sync.Mutex
			var n int
			body := `{"NeutronError": {"type": "` + tc.typ + `", "message": "m", "detail": ""}}`
			reply := answer(409, body)
			c := fakeNeutron(t, func(next http.RoundTripper) http.RoundTripper {
				return &Transport{Next: next, after: func(time.Duration) <-chan time.Time { return instant() }}
			}, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n++
				mu.Unlock()
				reply(w, r)
			})
			err := c.AddSubports(context.Background(), "t1", []Subport{{PortID: "p1", VLAN: 5}}) // a PUT
			mu.Lock()
			defer mu.Unlock()
			if n != tc.tries || !errors.Is(err, tc.want) {
				t.Fatalf("%d requests, %v; want %d, %v", n, err, tc.tries, tc.want)
			}
		})
	}
}

func TestFindSubnet(t *testing.T) {
	ctx := context.Background()
	c := fakeNeutron(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v2.0/subnets/s1":
			io.WriteString(w, `{"subnet": {"id": "s1", "network_id": "n1", "name": "one"}}`)
		case r.URL.Path == "/v2.0/subnets" && r.URL.Query().Get("name") == "one":
			io.WriteString(w, `{"subnets": [{"id": "s1", "network_id": "n1", "name": "one"}]}`)
		case r.URL.Path == "/v2.0/subnets" && r.URL.Query().Get("name") == "twice":
			io.WriteString(w, `{"subnets": [{"id": "s3", "network_id": "n2", "name": "twice"}, {"id": "s2", "network_id": "n1", "name": "twice"}]}`)
		case r.URL.Path == "/v2.0/subnets":
			io.WriteString(w, `{"subnets": []}`)
		case r.URL.Path == "/v2.0/subnets/gone":
			answer(404, `{"NeutronError": {"type": "SubnetNotFound", "message": "Subnet gone could not be found.", "detail": ""}}`)(w, r)
		default:
			answer(500, `{"NeutronError": {"type": "HTTPInternalServerError", "message": "boom", "detail": ""}}`)(w, r)
		}
	})
	for _, o := range []FindSubnetOpts{{ID: "s1"}, {Name: "one"}, {ID: "s1", Name: "ignored"}} {
		if got, err := c.FindSubnet(ctx, o); err != nil || got != (SubnetRef{ID: "s1", NetworkID: "n1"}) {
			t.Errorf("FindSubnet(%+v) = %+v, %v", o, got, err)
		}
	}
	for _, o := range []FindSubnetOpts{{ID: "gone"}, {Name: "nothing"}} {
		if _, err := c.FindSubnet(ctx, o); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "or not visible to this project") {
			t.Errorf("FindSubnet(%+v): %v, want ErrNotFound", o, err)
		}
	}
	_, err := c.FindSubnet(ctx, FindSubnetOpts{Name: "twice"})
	if want := `subnet name "twice" is ambiguous: 2 subnets carry it ([s2 s3])`; !errors.Is(err, ErrAmbiguous) || err == nil || err.Error() != want {
		t.Errorf("ambiguous name: %v, want ErrAmbiguous saying %q", err, want)
	}
	_, err = c.FindSubnet(ctx, FindSubnetOpts{ID: "broken"})
	if want := "get subnet broken: boom (HTTPInternalServerError, HTTP 500)"; err == nil || err.Error() != want || errors.Is(err, ErrNotFound) {
		t.Errorf("a failed call: %v, want %q", err, want)
	}
}

func TestRenameAndTagNetwork(t *testing.T) {
	var mu sync.Mutex
	var got []string
	c := fakeNeutron(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+strings.Join(strings.Fields(string(b)), ""))
		mu.Unlock()
		switch r.URL.Path {
		case "/v2.0/networks/n1":
			io.WriteString(w, `{"network": {"id": "n1", "name": "new"}}`)
		case "/v2.0/networks/n1/tags":
			io.WriteString(w, `{"tags": ["a", "b"]}`)
		default:
			answer(404, `{"NeutronError": {"type": "NetworkNotFound", "message": "Network n2 could not be found.", "detail": ""}}`)(w, r)
		}
	})
	ctx := context.Background()
	if err := c.RenameNetwork(ctx, "n1", "new"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetNetworkTags(ctx, "n1", []string{"b", "a"}); err != nil {
		t.Fatal(err)
	}
	want := []string{`PUT /v2.0/networks/n1 {"network":{"name":"new"}}`, `PUT /v2.0/networks/n1/tags {"tags":["a","b"]}`}
	mu.Lock()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	mu.Unlock()
	if err := c.RenameNetwork(ctx, "n2", "x"); !errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), `rename network n2 to "x": `) {
		t.Errorf("rename of a missing network: %v", err)
	}
	if err := c.SetNetworkTags(ctx, "n2", []string{"a"}); !errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), "tag network n2: ") {
		t.Errorf("tags of a missing network: %v", err)
	}
}
