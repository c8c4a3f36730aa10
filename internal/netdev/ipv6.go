package netdev

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
)

// Docker makes every container netns with IPv6 off (net.ipv6.conf.{all,default}
// .disable_ipv6=1) unless its own network asked for IPv6, so an interface born there
// refuses IPv6 addresses (EACCES). These run on the thread that is in the netns: /proc/
// sys/net belongs to the opener's netns.

// ipv6Conf is the path of one per-interface IPv6 sysctl.
func ipv6Conf(ifName, key string) string {
	return "/proc/sys/net/ipv6/conf/" + ifName + "/" + key
}

// enableIPv6 turns IPv6 on for ifName alone. Router advertisements are ignored first:
// the addresses and the default route are Neutron's, set statically, and an RA (even
// OVN's own, for a SLAAC subnet) must not add others.
func enableIPv6(ifName string) error {
	for _, kv := range [][2]string{{"accept_ra", "0"}, {"disable_ipv6", "0"}} {
		if err := os.WriteFile(ipv6Conf(ifName, kv[0]), []byte(kv[1]), 0o644); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("turn IPv6 on for %s: the kernel has no IPv6 (%w)", ifName, err)
			}
			return fmt.Errorf("turn IPv6 on for %s: set %s=%s: %w", ifName, kv[0], kv[1], err)
		}
	}
	return nil
}

// hasIPv6 reports whether any address is IPv6.
func hasIPv6(addrs []net.IPNet) bool {
	for _, a := range addrs {
		if a.IP.To4() == nil {
			return true
		}
	}
	return false
}
