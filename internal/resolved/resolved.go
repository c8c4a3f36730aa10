// Package resolved reads and sets a link's DNS in systemd-resolved, over D-Bus
// (org.freedesktop.resolve1). On a VM whose DHCP client hands its DNS servers to
// resolved (Ubuntu's and Debian's cloud images with systemd-networkd), those servers
// belong to the uplink, and resolved uses a link's servers only while the link holds an
// address: once setup moves the addresses onto the bridge, name lookups would stop unless
// the bridge gets the same servers and domains. resolv.conf names no interface, so a VM
// without resolved has nothing per link to move.
package resolved

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/godbus/dbus/v5"
)

const (
	busName   = "org.freedesktop.resolve1"
	manager   = busName + ".Manager"
	linkIface = busName + ".Link"
)

// ErrNotRunning: no system bus, or no systemd-resolved on it.
var ErrNotRunning = errors.New("systemd-resolved is not running")

// Domain is one of a link's DNS domains; a routing-only domain ("~example.com") routes
// lookups to the link's servers without being a search domain.
type Domain struct {
	Name      string
	RouteOnly bool
}

func (d Domain) String() string {
	if d.RouteOnly {
		return "~" + d.Name
	}
	return d.Name
}

// Link is what resolved holds for one link.
type Link struct {
	Servers []netip.Addr
	Domains []Domain
}

// Empty is a link with no DNS of its own.
func (l Link) Empty() bool { return len(l.Servers) == 0 && len(l.Domains) == 0 }

// Equal: the same servers and domains, in the same order (resolved tries them in order).
func (l Link) Equal(o Link) bool {
	return slices.Equal(l.Servers, o.Servers) && slices.Equal(l.Domains, o.Domains)
}

func (l Link) String() string {
	var s, d []string
	for _, a := range l.Servers {
		s = append(s, a.String())
	}
	for _, x := range l.Domains {
		d = append(d, x.String())
	}
	out := "servers " + orNone(strings.Join(s, " "))
	if len(d) > 0 {
		out += ", domains " + strings.Join(d, " ")
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Client talks to systemd-resolved on the system bus.
type Client struct {
	conn *dbus.Conn
}

// Open connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS, else the standard socket)
// and checks that resolved is on it: it is never started by asking.
func Open(ctx context.Context) (*Client, error) {
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("%w (no system bus: %v)", ErrNotRunning, err)
	}
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, busName).Store(&has); err != nil {
		conn.Close()
		return nil, fmt.Errorf("system bus: %w", err)
	}
	if !has {
		conn.Close()
		return nil, ErrNotRunning
	}
	return &Client{conn: conn}, nil
}

// Close ends the bus connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) manager() dbus.BusObject {
	return c.conn.Object(busName, "/org/freedesktop/resolve1")
}

// address is resolved's a(iay): an address family and the address's bytes.
type address struct {
	Family int32
	Addr   []byte
}

// domain is resolved's a(sb): a name and whether it only routes.
type domain struct {
	Name      string
	RouteOnly bool
}

// Link reads a link's own servers and domains (not the global ones).
func (c *Client) Link(ctx context.Context, ifindex int) (Link, error) {
	var path dbus.ObjectPath
	if err := c.manager().CallWithContext(ctx, manager+".GetLink", 0, int32(ifindex)).Store(&path); err != nil {
		return Link{}, fmt.Errorf("resolved: link %d: %w", ifindex, err)
	}
	obj := c.conn.Object(busName, path)
	var addrs []address
	if err := getProperty(ctx, obj, "DNS", &addrs); err != nil {
		return Link{}, fmt.Errorf("resolved: DNS of link %d: %w", ifindex, err)
	}
	var doms []domain
	if err := getProperty(ctx, obj, "Domains", &doms); err != nil {
		return Link{}, fmt.Errorf("resolved: domains of link %d: %w", ifindex, err)
	}
	var l Link
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.Addr); ok {
			l.Servers = append(l.Servers, ip.Unmap())
		}
	}
	for _, d := range doms {
		l.Domains = append(l.Domains, Domain(d))
	}
	return l, nil
}

func getProperty(ctx context.Context, obj dbus.BusObject, name string, out any) error {
	var v dbus.Variant
	if err := obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, linkIface, name).Store(&v); err != nil {
		return err
	}
	return v.Store(out)
}

// SetLink gives a link these servers and domains, in place of what it had.
func (c *Client) SetLink(ctx context.Context, ifindex int, l Link) error {
	addrs := make([]address, 0, len(l.Servers))
	for _, ip := range l.Servers {
		fam := int32(2) // AF_INET
		if ip.Is6() {
			fam = 10 // AF_INET6
		}
		addrs = append(addrs, address{Family: fam, Addr: ip.AsSlice()})
	}
	doms := make([]domain, 0, len(l.Domains))
	for _, d := range l.Domains {
		doms = append(doms, domain(d))
	}
	if err := c.manager().CallWithContext(ctx, manager+".SetLinkDNS", 0, int32(ifindex), addrs).Err; err != nil {
		return fmt.Errorf("resolved: set DNS servers of link %d: %w", ifindex, err)
	}
	if err := c.manager().CallWithContext(ctx, manager+".SetLinkDomains", 0, int32(ifindex), doms).Err; err != nil {
		return fmt.Errorf("resolved: set DNS domains of link %d: %w", ifindex, err)
	}
	return nil
}

// Revert drops what was set on a link, as if nothing had been.
func (c *Client) Revert(ctx context.Context, ifindex int) error {
	if err := c.manager().CallWithContext(ctx, manager+".RevertLink", 0, int32(ifindex)).Err; err != nil {
		return fmt.Errorf("resolved: revert link %d: %w", ifindex, err)
	}
	return nil
}
