package neutron

import (
	"fmt"
	"slices"
	"strings"
)

// Neutron's IPv6 modes, as its API and the openstack CLI name them.
const (
	ModeSLAAC     = "slaac"
	ModeStateful  = "dhcpv6-stateful"
	ModeStateless = "dhcpv6-stateless"
	// ModeNone is what ovn-docker's flags accept for "attribute unset": static
	// addressing, no RA from OVN.
	ModeNone = "none"
)

// IPv6Modes turns the --ipv6-address-mode and --ipv6-ra-mode flags into Neutron's subnet
// attributes ("" for unset). Neither given: DHCPv6 stateful for both when DHCP is on
// (what ovn-docker always made), none (static) when it is off. Neutron's own rules are
// checked here so that a refusal is one clear line before anything is made.
func IPv6Modes(addr, ra string, dhcp bool) (string, string, error) {
	if addr == "" && ra == "" {
		if dhcp {
			return ModeStateful, ModeStateful, nil
		}
		return "", "", nil
	}
	valid := []string{ModeSLAAC, ModeStateful, ModeStateless, ModeNone}
	for _, f := range []struct{ flag, v string }{{"--ipv6-address-mode", addr}, {"--ipv6-ra-mode", ra}} {
		if f.v != "" && !slices.Contains(valid, f.v) {
			return "", "", fmt.Errorf("%s %q: want one of %s", f.flag, f.v, strings.Join(valid, ", "))
		}
		if !dhcp && (f.v == ModeStateful || f.v == ModeStateless) {
			return "", "", fmt.Errorf("%s %s needs DHCP: drop --no-dhcp", f.flag, f.v)
		}
	}
	if addr == ModeNone {
		addr = ""
	}
	if ra == ModeNone {
		ra = ""
	}
	if addr != "" && ra != "" && addr != ra {
		return "", "", fmt.Errorf("--ipv6-address-mode %s with --ipv6-ra-mode %s: Neutron wants both the same when both are set", addr, ra)
	}
	return addr, ra, nil
}

// ModeText says how a subnet's ports get IPv6 addresses, for messages.
func ModeText(addr string) string {
	if addr == "" {
		return "static"
	}
	return addr
}
