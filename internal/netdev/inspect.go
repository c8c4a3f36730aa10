package netdev

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// Live is what a container interface looks like now, for a comparison with what it
// was given (the CNI's CHECK).
type Live struct {
	MAC   net.HardwareAddr
	MTU   int
	Up    bool
	Addrs []netip.Prefix // global addresses; link-local ones are the kernel's own
}

// Inspect reads ifName in the netns at nsPath. A netns or interface that is gone is an
// error wrapping ErrGone.
func Inspect(ctx context.Context, nsPath, ifName string) (*Live, error) {
	if nsPath == "" {
		return nil, fmt.Errorf("empty netns path: %w", ErrInvalidSpec)
	}
	if err := validName(ifName); err != nil {
		return nil, fmt.Errorf("container interface name: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	target, err := ns.GetNS(nsPath)
	if err != nil {
		if isNSGone(err) {
			return nil, fmt.Errorf("open netns %s: %w: %w", nsPath, ErrGone, err)
		}
		return nil, fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer target.Close()
	var live Live
	err = target.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(ifName)
		if isNotFound(err) {
			return fmt.Errorf("%s in %s: %w", ifName, nsPath, ErrGone)
		}
		if err != nil {
			return fmt.Errorf("look up %s in %s: %w", ifName, nsPath, err)
		}
		attrs := l.Attrs()
		live.MAC, live.MTU, live.Up = attrs.HardwareAddr, attrs.MTU, attrs.Flags&net.FlagUp != 0
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("addresses of %s in %s: %w", ifName, nsPath, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || ip.Unmap().IsLinkLocalUnicast() {
				continue
			}
			ones, _ := a.Mask.Size()
			live.Addrs = append(live.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &live, nil
}
