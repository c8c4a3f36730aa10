package netdev

import (
	"errors"
	"fmt"
	"net"
)

var (
	// ErrGone means the container's netns or interface no longer exists. A
	// veth dies with its netns, so the pair is gone too: drop it, do not retry.
	ErrGone = errors.New("interface or netns gone")
	// ErrNameInUse means an interface name is already taken by a link that is
	// not the expected one (IfName in the container, or a pair name).
	ErrNameInUse = errors.New("interface name in use")
	// ErrInvalidSpec means the request is malformed; nothing was touched.
	ErrInvalidSpec = errors.New("invalid interface spec")
)

// Spec describes one container interface.
type Spec struct {
	HostName string           // host end, stays in the caller's netns; <= 15 bytes
	PeerName string           // temporary name of the container end while it is in the caller's netns; <= 15 bytes (derived from HostName if empty)
	NetNS    string           // path of the container's netns (/proc/PID/ns/net or a bind mount)
	IfName   string           // name inside the container: eth0, eth1, ...
	MAC      net.HardwareAddr // container end's MAC (Neutron's); nil keeps the current one
	Addrs    []net.IPNet      // IPs with prefix length (v4 and/or v6)
	Gateways []net.IP         // default route(s) via these (one v4, one v6 at most); may be empty
	MTU      int              // 0 keeps the current MTU
}

// peerName is the temporary name of the container end.
func (s Spec) peerName() string {
	if s.PeerName != "" {
		return s.PeerName
	}
	return derivePeerName(s.HostName)
}

// validate checks what can be checked without the kernel. needHost is set
// for Create, which names the host end; MoveIn only needs a peer name.
// Whether the kernel accepts a MAC or an address is left to the kernel: its
// refusal is rolled back like any other failure.
func (s Spec) validate(needHost bool) error {
	if needHost || s.PeerName == "" {
		if err := validName(s.HostName); err != nil {
			return fmt.Errorf("host name: %w", err)
		}
	}
	if err := validName(s.peerName()); err != nil {
		return fmt.Errorf("peer name: %w", err)
	}
	if needHost && s.peerName() == s.HostName {
		return fmt.Errorf("peer name %q equals host name: %w", s.HostName, ErrInvalidSpec)
	}
	if s.NetNS == "" {
		return fmt.Errorf("empty netns path: %w", ErrInvalidSpec)
	}
	if err := validName(s.IfName); err != nil {
		return fmt.Errorf("container interface name: %w", err)
	}
	if s.MAC != nil && len(s.MAC) != 6 {
		return fmt.Errorf("mac %s is not 6 bytes: %w", s.MAC, ErrInvalidSpec)
	}
	if s.MTU < 0 {
		return fmt.Errorf("negative mtu %d: %w", s.MTU, ErrInvalidSpec)
	}
	for _, a := range s.Addrs {
		if err := validAddr(a); err != nil {
			return err
		}
	}
	var v4, v6 int
	for _, gw := range s.Gateways {
		switch {
		case gw == nil || gw.IsUnspecified():
			return fmt.Errorf("gateway %q: %w", gw, ErrInvalidSpec)
		case gw.To4() != nil:
			v4++
		default:
			v6++
		}
	}
	if v4 > 1 || v6 > 1 {
		return fmt.Errorf("more than one gateway per address family: %w", ErrInvalidSpec)
	}
	return nil
}

// validAddr rejects addresses whose mask does not fit the IP family: netlink
// would send a nonsense prefix length.
func validAddr(a net.IPNet) error {
	if a.IP == nil {
		return fmt.Errorf("address without ip: %w", ErrInvalidSpec)
	}
	ones, bits := a.Mask.Size()
	want := net.IPv6len * 8
	if a.IP.To4() != nil {
		want = net.IPv4len * 8
	}
	if bits != want {
		return fmt.Errorf("address %s/%d: mask does not match the ip family: %w", a.IP, ones, ErrInvalidSpec)
	}
	return nil
}
