package neutron

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// The kinds of refusal callers tell apart, with errors.Is. A refusal of Neutron's is an
// *Error that is its Kind; every 409 is also ErrConflict. Nothing outside this package
// reads Neutron's status codes or messages.
var (
	// ErrNotFound: a network, subnet, port or trunk that does not exist or that the
	// credentials may not see (Neutron answers both the same way: 404).
	ErrNotFound = errors.New("not found")
	// ErrForbidden: Neutron's policy refused the call (403).
	ErrForbidden = errors.New("forbidden by Neutron's policy")
	// ErrConflict: any 409, including all the kinds below.
	ErrConflict = errors.New("conflict")
	// ErrNetworkInUse: Neutron refuses to delete a network that still has ports.
	ErrNetworkInUse = errors.New("network in use")
	// ErrPortInUse: the port already has a device, or is a trunk's parent or subport.
	ErrPortInUse = errors.New("port in use")
	// ErrVLANInUse: the trunk already has a subport with that VLAN.
	ErrVLANInUse = errors.New("vlan already in use on the trunk")
	// ErrOverQuota: the project's quota (of ports, networks, trunks...) is used up.
	ErrOverQuota = errors.New("over quota")
	// ErrNoAddresses: the network's subnets have no address left to give.
	ErrNoAddresses = errors.New("no addresses left")
	// ErrConcurrentUpdate: someone else changed the same thing at the same moment; the
	// call may well succeed if made again (Transport does so).
	ErrConcurrentUpdate = errors.New("concurrent update")
	// ErrAmbiguous: a name that several networks, subnets or security groups carry.
	ErrAmbiguous = errors.New("ambiguous")
)

// Error is a call Neutron refused, or that did not reach it, with what was being done.
// It is its Kind for errors.Is (and ErrConflict when Status is 409), and gophercloud's
// error stays reachable with errors.As.
type Error struct {
	Op      string // what was being done: "create 4 ports"
	Status  int    // HTTP status of Neutron's answer; 0 when there was none
	Type    string // the NeutronError type: "OverQuota", "PortInUse"...; "" if none
	Message string // the NeutronError message; "" if none
	Kind    error  // the most specific of the Err* values above that it is, or nil
	Err     error  // gophercloud's error (or the transport's)
}

// Error is what was being done and Neutron's explanation, rather than a dump of the
// HTTP exchange.
func (e *Error) Error() string { return e.Op + ": " + neutronMessage(e.Err) }

func (e *Error) Unwrap() []error {
	out := []error{e.Err}
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Status == http.StatusConflict && e.Kind != ErrConflict {
		out = append(out, ErrConflict)
	}
	return out
}

// kindOf classifies an answer of Neutron's by its status and NeutronError type. The
// types are the names of Neutron's exception classes (neutron_lib.exceptions and the
// trunk plugin's), which its API puts in every error body.
func kindOf(status int, typ string) error {
	switch status {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusConflict:
	case http.StatusBadRequest:
		if typ == "InvalidIpForNetwork" || typ == "InvalidIpForSubnet" {
			return ErrAddressInvalid
		}
		return nil
	default:
		return nil
	}
	switch {
	case typ == "NetworkInUse":
		return ErrNetworkInUse
	case typ == "PortInUse", typ == "PortInUseAsSubPort", typ == "PortInUseAsTrunkParent", typ == "ParentPortInUse":
		return ErrPortInUse
	case typ == "DuplicateSubPort":
		return ErrVLANInUse
	case typ == "IpAddressAlreadyAllocated", typ == "IpAddressInUse":
		return ErrAddressInUse
	case typ == "OverQuota":
		return ErrOverQuota
	case strings.HasPrefix(typ, "IpAddressGenerationFailure"):
		// With the IPAM's IpAddressGenerationFailureAllSubnets and ...NoMatchingSubnet.
		return ErrNoAddresses
	case concurrentTypes[typ]:
		return ErrConcurrentUpdate
	}
	return ErrConflict
}

// concurrentTypes are the 409s that report a concurrent update rather than a real
// conflict (a VLAN in use, a port in use, quota): the trunk's status is changing under
// another request, or the database lost a race.
var concurrentTypes = map[string]bool{
	"TrunkInErrorState": true, "TrunkNotInState": true, "StaleDataError": true,
	"RetryRequest": true, "DBDeadlock": true, "ConcurrentModification": true,
}

// neutronError reads the NeutronError of an error body; both are "" when there is none.
func neutronError(body []byte) (typ, msg string) {
	var b struct {
		NeutronError struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"NeutronError"`
	}
	if json.Unmarshal(body, &b) != nil {
		return "", ""
	}
	return b.NeutronError.Type, b.NeutronError.Message
}

// isNotFound reports a 404 from Neutron.
func isNotFound(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusNotFound) }

// isForbidden reports a 403 from Neutron: its policy refused the call.
func isForbidden(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusForbidden) }

// isConflict reports a 409 from Neutron.
func isConflict(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusConflict) }

// neutronMessage pulls Neutron's own explanation out of an error, so users read "Quota
// exceeded for resources: ['port']" rather than a dump of the HTTP exchange.
func neutronMessage(err error) string {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		if typ, msg := neutronError(e.Body); msg != "" {
			return fmt.Sprintf("%s (%s, HTTP %d)", msg, typ, e.Actual)
		}
		return fmt.Sprintf("HTTP %d from %s %s", e.Actual, e.Method, e.URL)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			return fmt.Sprintf("cannot reach Neutron at %s (%v)", u.Host, ue.Err)
		}
	}
	return err.Error()
}

// neutronType is the NeutronError type of a failed call ("PortInUse", "OverQuota"...).
func neutronType(err error) string {
	var e gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &e) {
		typ, _ := neutronError(e.Body)
		return typ
	}
	return ""
}

// wrap makes an *Error of a failed call: what was being done (format, args), Neutron's
// answer and its kind.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	e := &Error{Op: fmt.Sprintf(format, args...), Err: err}
	var rc gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &rc) {
		e.Status = rc.Actual
		e.Type, e.Message = neutronError(rc.Body)
		e.Kind = kindOf(e.Status, e.Type)
	}
	return e
}

// isKind tells whether a raw gophercloud error from a call is of that kind (for the calls
// that react to a kind before they wrap the error).
func isKind(err, kind error) bool {
	var rc gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &rc) {
		return false
	}
	typ, _ := neutronError(rc.Body)
	k := kindOf(rc.Actual, typ)
	return k == kind || kind == ErrConflict && rc.Actual == http.StatusConflict
}
