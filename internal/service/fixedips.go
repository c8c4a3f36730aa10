package service

import (
	"net/netip"

	"github.com/ovn-docker/ovn-docker/internal/runargs"
)

// fixedIPs reads run's --ip and --ip6: the addresses of the first network's interface.
func fixedIPs(o *runargs.Options) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range []string{o.IPv4Address, o.IPv6Address} {
		if s == "" {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
