package netdev

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strings"
	"unicode"
)

const (
	// HostPrefix starts every host-end name made by HostName; garbage
	// collection lists links by it.
	HostPrefix = "odv"
	// PeerPrefix starts every temporary container-end name made by PeerName.
	// It differs from HostPrefix so that List(HostPrefix) never returns the
	// container end of a pair parked in the caller's namespace.
	PeerPrefix = "odc"

	// maxNameLen is IFNAMSIZ minus the terminating NUL.
	maxNameLen = 15
	// idDigits is how many hex digits of the port ID a name keeps: 44 bits
	// make a clash between ports of one VM practically impossible while the
	// name still fits in maxNameLen.
	idDigits = maxNameLen - 4
)

// HostName returns the deterministic host-end name for a Neutron port:
// HostPrefix followed by the first 11 hex digits of the port UUID.
func HostName(portID string) string { return HostPrefix + shortID(portID) }

// PeerName returns the deterministic temporary name of the container end for
// a Neutron port: PeerPrefix followed by the same digits as HostName.
func PeerName(portID string) string { return PeerPrefix + shortID(portID) }

// shortID keeps the first idDigits hex digits of id, lowercased; dashes and
// anything else that is not hex are dropped.
func shortID(id string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		if b.Len() == idDigits {
			break
		}
		if (r >= '0' && r <= '9') || (r >= 'a' && r <= 'f') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// derivePeerName picks the temporary container-end name for a host end.
// Names from HostName map onto PeerName of the same port; any other name
// gets a hash so that concurrent pairs never share a temporary name.
func derivePeerName(hostName string) string {
	if rest, ok := strings.CutPrefix(hostName, HostPrefix); ok && rest != "" {
		return PeerPrefix + rest
	}
	h := fnv.New64a()
	h.Write([]byte(hostName))
	return PeerPrefix + hex.EncodeToString(h.Sum(nil))[:idDigits]
}

// validName applies the kernel's rules for interface names (dev_valid_name)
// so that a bad name fails before anything is created.
func validName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty interface name: %w", ErrInvalidSpec)
	case len(name) > maxNameLen:
		return fmt.Errorf("interface name %q longer than %d bytes: %w", name, maxNameLen, ErrInvalidSpec)
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q not allowed: %w", name, ErrInvalidSpec)
	}
	for _, r := range name {
		if r == '/' || r == ':' || r == 0 || unicode.IsSpace(r) {
			return fmt.Errorf("interface name %q contains %q: %w", name, r, ErrInvalidSpec)
		}
	}
	return nil
}
