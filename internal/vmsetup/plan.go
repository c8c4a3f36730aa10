package vmsetup

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/ovs"
)

// step is one change and its undo; the plan is said before it is carried out.
type step struct {
	what string
	do   func(context.Context) error
	undo func(context.Context) error
}

// planFor lists the changes that take the VM from snap to set up; none when it is.
func planFor(c Config, snap *snapshot) []step {
	if snap.bridgeExists && snap.uplinkOnBridge && len(snap.addrs) == 0 && dnsMoved(snap) {
		return nil
	}
	var plan []step
	mtu := snap.uplink.Attrs().MTU
	mac := snap.uplink.Attrs().HardwareAddr.String()
	if !snap.bridgeExists {
		dp := c.Datapath
		if dp == "" {
			dp = "system"
		}
		plan = append(plan, step{
			what: fmt.Sprintf("create bridge %s (datapath %s, MAC %s, the uplink's)", c.Bridge, dp, mac),
			do: func(ctx context.Context) error {
				return c.Switch.AddBridge(ctx, ovs.Bridge{Name: c.Bridge, Datapath: dp, HWAddr: mac})
			},
			undo: func(ctx context.Context) error { return c.Switch.DeleteBridge(ctx, c.Bridge) },
		})
	}
	var br netlink.Link
	plan = append(plan, step{
		what: fmt.Sprintf("bring %s up with MTU %d, the uplink's", c.Bridge, mtu),
		do: func(ctx context.Context) error {
			var err error
			if br, err = waitLink(ctx, c.Bridge); err != nil {
				return err
			}
			if err := netlink.LinkSetMTU(br, mtu); err != nil {
				return err
			}
			return netlink.LinkSetUp(br)
		},
	})
	// The bridge's DNS before its addresses: resolved uses it from the moment they arrive.
	if !dnsMoved(snap) {
		plan = append(plan, dnsStep(c, snap, func() int { return br.Attrs().Index }))
	}
	if !snap.uplinkOnBridge {
		plan = append(plan, step{
			what: fmt.Sprintf("add %s to %s (untagged: it carries every VLAN)", c.Uplink, c.Bridge),
			do:   func(ctx context.Context) error { return c.Switch.AddUplink(ctx, c.Bridge, c.Uplink) },
			undo: func(ctx context.Context) error { return c.Switch.DeletePort(ctx, c.Bridge, c.Uplink) },
		})
	}
	kernelOff := func() {
		if c.Datapath != "netdev" {
			return
		}
		// A packet socket reads the uplink: the kernel must not answer on it as well.
		// Only once the addresses have left it: with ARP off, what the kernel still
		// sent through it would be lost.
		plan = append(plan, step{
			what: fmt.Sprintf("stop the kernel answering on %s (ARP and IPv6 off: the userspace datapath reads it)", c.Uplink),
			do: func(context.Context) error {
				if err := netlink.LinkSetARPOff(snap.uplink); err != nil {
					return err
				}
				return writeSysctl(ipv6Sysctl(c.Uplink), "1")
			},
			undo: func(context.Context) error {
				var errs []error
				if !snap.noARP {
					errs = append(errs, netlink.LinkSetARPOn(snap.uplink))
				}
				if snap.ipv6Off != "" {
					errs = append(errs, writeSysctl(ipv6Sysctl(c.Uplink), snap.ipv6Off))
				}
				return errors.Join(errs...)
			},
		})
	}
	if len(snap.addrs) == 0 {
		kernelOff()
		return plan
	}
	// The addresses go onto the bridge first, then off the uplink (which takes the
	// uplink's routes with them), then the routes onto the bridge. Undone in reverse,
	// the addresses are back on the uplink before its routes are.
	for _, a := range snap.addrs {
		a := a
		plan = append(plan, step{
			what: fmt.Sprintf("add %s to %s", a.IPNet, c.Bridge),
			do:   func(context.Context) error { return netlink.AddrReplace(br, onLink(a)) },
			undo: func(context.Context) error { return ignoreMissing(netlink.AddrDel(br, onLink(a))) },
		})
	}
	plan = append(plan, step{
		what: fmt.Sprintf("keep %d route(s) through %s to put back if needed", len(snap.routes), c.Uplink),
		do:   func(context.Context) error { return nil },
		undo: func(context.Context) error {
			var errs []error
			for _, r := range snap.routes {
				r := r
				errs = append(errs, netlink.RouteReplace(&r))
			}
			return errors.Join(errs...)
		},
	})
	for _, a := range snap.addrs {
		a := a
		plan = append(plan, step{
			what: fmt.Sprintf("remove %s from %s", a.IPNet, c.Uplink),
			// Copies: netlink writes into the address it is given (its broadcast).
			do:   func(context.Context) error { b := a; return netlink.AddrDel(snap.uplink, &b) },
			undo: func(context.Context) error { b := a; return netlink.AddrReplace(snap.uplink, &b) },
		})
	}
	kernelOff()
	for _, r := range snap.routes {
		r := r
		plan = append(plan, step{
			what: fmt.Sprintf("route %s onto %s", routeString(r), c.Bridge),
			do: func(context.Context) error {
				moved := r
				moved.LinkIndex = br.Attrs().Index
				return netlink.RouteReplace(&moved)
			},
			undo: func(context.Context) error {
				moved := r
				moved.LinkIndex = br.Attrs().Index
				return ignoreMissing(netlink.RouteDel(&moved))
			},
		})
	}
	return plan
}

// onLink is the address as it goes onto the bridge: the same, but no longer tied to
// the DHCP lease of the uplink (the lease's client watches the uplink, not the bridge).
func onLink(a netlink.Addr) *netlink.Addr {
	b := a
	b.LinkIndex = 0
	b.Label = ""
	b.ValidLft, b.PreferedLft = 0, 0
	return &b
}

func routeString(r netlink.Route) string {
	dst := "default"
	if r.Dst != nil && !r.Dst.IP.IsUnspecified() {
		dst = r.Dst.String()
	}
	if r.Gw != nil {
		return dst + " via " + r.Gw.String()
	}
	return dst
}

func ignoreMissing(err error) error {
	if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func writeSysctl(path, v string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil // no IPv6 in this kernel: nothing to turn off
	}
	return os.WriteFile(path, []byte(v), 0o644)
}

// waitLink waits for the bridge's interface, which ovs-vswitchd makes: on the kernel's
// word (a link update), not on a clock.
func waitLink(ctx context.Context, name string) (netlink.Link, error) {
	updates := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		return nil, err
	}
	for {
		if l, err := netlink.LinkByName(name); err == nil {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s to appear: %w", name, ctx.Err())
		case <-updates:
		}
	}
}
