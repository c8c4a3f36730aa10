package neutron

import (
	"bytes"
	"io"
	"net/http"
	"net/netip"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
)

// FuzzErrorBody: whatever Neutron (or something in its place) answers, the error
// reading never panics and always says something.
func FuzzErrorBody(f *testing.F) {
	f.Add([]byte(`{"NeutronError": {"type": "PortInUse", "message": "in use", "detail": ""}}`))
	f.Add([]byte(`{"NeutronError": null}`))
	f.Add([]byte(`<html>bad gateway</html>`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		err := gophercloud.ErrUnexpectedResponseCode{Method: "POST", URL: "http://neutron/v2.0/ports", Actual: 409, Body: body}
		if neutronMessage(err) == "" {
			t.Fatal("empty message")
		}
		_ = neutronType(err)
	})
}

// FuzzNetworkInput: names and CIDRs from the command line are judged without panics.
func FuzzNetworkInput(f *testing.F) {
	f.Add("LS1", "10.0.0.0/24")
	f.Add("", "fd00::/64")
	f.Add("0b1f2c3d-0000-4000-8000-000000000000", "0.0.0.0/0")
	f.Fuzz(func(t *testing.T, name, cidr string) {
		_ = ValidateNetworkName(name)
		if p, err := netip.ParsePrefix(cidr); err == nil {
			_ = checkSubnet(p, 4)
			_ = checkSubnet(p, 6)
			if p.Addr().Is4() && p.Bits() >= 8 {
				_, _ = FreePrefix(netip.MustParsePrefix("10.0.0.0/8"), 24, netip.MustParseAddr("10.10.0.0"), []netip.Prefix{p.Masked()})
			}
		}
	})
}

// FuzzConflictBody: the reading of a 409's body never panics, and leaves the body whole
// for the caller.
func FuzzConflictBody(f *testing.F) {
	f.Add([]byte(`{"NeutronError": {"type": "StaleDataError", "message": "x"}}`))
	f.Add([]byte(`{"NeutronError": 1}`))
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := &http.Response{StatusCode: 409, Body: io.NopCloser(bytes.NewReader(body))}
		_ = concurrentUpdate(resp)
		got, _ := io.ReadAll(resp.Body)
		if !bytes.Equal(got, body) {
			t.Fatal("the body was consumed")
		}
	})
}
