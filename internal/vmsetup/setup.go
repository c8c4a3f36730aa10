// Package vmsetup prepares a VM for its containers: the OVS bridge, with the uplink on
// it and the VM's addresses and routes moved from the uplink onto the bridge, without
// cutting the VM off. Cloud images boot with their address on eth0; containers' tagged
// frames need eth0 on a bridge. Moving the address by hand is where VMs get lost, so
// each step here has its undo, the VM's reach (Keystone, Neutron, the gateway) is
// checked before and after, and anything that fails puts the VM back as it was.
package vmsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/resolved"
)

// Switch is the VM's Open vSwitch, as setup uses it.
type Switch interface {
	BridgeExists(ctx context.Context, name string) (bool, error)
	AddBridge(ctx context.Context, b ovs.Bridge) error
	DeleteBridge(ctx context.Context, name string) error
	AddUplink(ctx context.Context, bridge, name string) error
	DeletePort(ctx context.Context, bridge, name string) error
	Ports(ctx context.Context, bridge string) ([]ovs.PortInfo, error)
}

var _ Switch = (*ovs.Client)(nil)

// Config is one setup.
type Config struct {
	Bridge, Uplink string
	// Datapath is the bridge's: "system" (the kernel's, a real VM's) or "netdev"
	// (userspace: the uplink is read through a packet socket, so the kernel must stop
	// answering on it).
	Datapath string
	Switch   Switch
	// DNS is systemd-resolved; nil where it does not run (resolv.conf then names no
	// interface: nothing per link to move).
	DNS DNS
	// Reach are the places the VM must still reach afterwards (Keystone, Neutron), as
	// host:port; the default route's gateway is pinged too when it answered before.
	Reach  []string
	DryRun bool
	Out    io.Writer
	// FailCheck makes the check after the move fail (fault-injection builds only), to
	// prove the way back.
	FailCheck bool
}

// Result says what setup did.
type Result struct {
	Changed bool
	Moved   []string // the addresses moved onto the bridge
}

// ErrRolledBack wraps a failure after which the VM was put back as it was.
var ErrRolledBack = errors.New("the VM is as it was before")

// Run prepares the VM. With nothing to do it changes nothing and says so.
func Run(ctx context.Context, c Config) (*Result, error) {
	if c.Out == nil {
		c.Out = io.Discard
	}
	snap, err := look(ctx, c)
	if err != nil {
		return nil, err
	}
	plan := planFor(c, snap)
	if len(plan) == 0 {
		fmt.Fprintf(c.Out, "nothing to do: %s is on %s, which holds the VM's addresses%s\n", c.Uplink, c.Bridge, dnsSaid(c, snap))
		return &Result{}, nil
	}
	for _, s := range plan {
		fmt.Fprintf(c.Out, "%s %s\n", map[bool]string{true: "would", false: "will"}[c.DryRun], s.what)
	}
	if c.DryRun {
		return &Result{}, nil
	}
	// What the VM reaches now, it must reach afterwards; what it cannot reach now is
	// said before anything changes.
	gw := defaultGateway(snap.routes)
	gwBefore := gw != nil && ping(ctx, gw)
	for _, hp := range c.Reach {
		if err := dial(ctx, hp); err != nil {
			return nil, fmt.Errorf("%s is not reachable even now (%v): nothing was changed", hp, err)
		}
	}
	var done []step
	undo := func(cause error) error {
		var failed []string
		for i := len(done) - 1; i >= 0; i-- {
			if done[i].undo == nil {
				continue
			}
			if err := done[i].undo(context.WithoutCancel(ctx)); err != nil {
				failed = append(failed, fmt.Sprintf("undo %q: %v", done[i].what, err))
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("%w; putting the VM back failed too: %s", cause, strings.Join(failed, "; "))
		}
		return fmt.Errorf("%w: %w", cause, ErrRolledBack)
	}
	for _, s := range plan {
		if err := s.do(ctx); err != nil {
			return nil, undo(fmt.Errorf("%s: %w", s.what, err))
		}
		done = append(done, s)
	}
	// The checks: the same places, and the gateway if it answered before.
	var bad []string
	for _, hp := range c.Reach {
		if err := dial(ctx, hp); err != nil {
			bad = append(bad, fmt.Sprintf("%s (%v)", hp, err))
		}
	}
	if gwBefore && !pingSoon(ctx, gw) {
		bad = append(bad, "the gateway "+gw.String())
	}
	if c.FailCheck {
		bad = append(bad, "the check (fault injected)")
	}
	if len(bad) > 0 {
		return nil, undo(fmt.Errorf("after the move the VM no longer reaches %s", strings.Join(bad, ", ")))
	}
	res := &Result{Changed: true}
	for _, a := range snap.addrs {
		res.Moved = append(res.Moved, a.IPNet.String())
	}
	return res, nil
}

// snapshot is the VM before setup.
type snapshot struct {
	bridgeExists   bool
	uplinkOnBridge bool
	uplink         netlink.Link
	addrs          []netlink.Addr  // the uplink's, but link-local IPv6
	routes         []netlink.Route // through the uplink, but the kernel's own
	noARP          bool
	ipv6Off        string // the uplink's disable_ipv6 before
	// uplinkDNS and bridgeDNS are resolved's, empty without it.
	uplinkDNS, bridgeDNS resolved.Link
}

// dnsSaid is what "nothing to do" adds about DNS.
func dnsSaid(c Config, s *snapshot) string {
	if c.DNS == nil || s.uplinkDNS.Empty() {
		return ""
	}
	return " and the DNS of " + c.Uplink + " (" + s.bridgeDNS.String() + ")"
}

func look(ctx context.Context, c Config) (*snapshot, error) {
	s := &snapshot{}
	var err error
	if s.uplink, err = netlink.LinkByName(c.Uplink); err != nil {
		return nil, fmt.Errorf("uplink %s: %w", c.Uplink, err)
	}
	if s.bridgeExists, err = c.Switch.BridgeExists(ctx, c.Bridge); err != nil {
		return nil, err
	}
	if s.bridgeExists {
		ports, err := c.Switch.Ports(ctx, c.Bridge)
		if err != nil {
			return nil, err
		}
		s.uplinkOnBridge = slices.ContainsFunc(ports, func(p ovs.PortInfo) bool { return p.Name == c.Uplink })
	}
	bridgeIndex := 0
	if l, err := netlink.LinkByName(c.Bridge); err == nil {
		bridgeIndex = l.Attrs().Index
	}
	if err := lookDNS(ctx, c, s, bridgeIndex); err != nil {
		return nil, err
	}
	addrs, err := netlink.AddrList(s.uplink, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		if a.IP.To4() != nil && a.Broadcast == nil {
			// None, as it was: netlink would otherwise compute one when it is put back.
			a.Broadcast = net.IPv4zero
		}
		s.addrs = append(s.addrs, a)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{LinkIndex: s.uplink.Attrs().Index, Table: 254},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		if r.Protocol == 2 /* kernel: made with an address, moves with it */ || (r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast()) {
			continue
		}
		s.routes = append(s.routes, r)
	}
	s.noARP = s.uplink.Attrs().RawFlags&0x80 /* IFF_NOARP */ != 0
	b, _ := os.ReadFile(ipv6Sysctl(c.Uplink))
	s.ipv6Off = strings.TrimSpace(string(b))
	return s, nil
}

func ipv6Sysctl(dev string) string { return "/proc/sys/net/ipv6/conf/" + dev + "/disable_ipv6" }

func defaultGateway(routes []netlink.Route) net.IP {
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil && r.Gw.To4() != nil {
			return r.Gw
		}
	}
	return nil
}

// dial opens and closes a TCP connection to host:port.
func dial(ctx context.Context, hostport string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return err
	}
	return conn.Close()
}
