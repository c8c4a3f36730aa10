// Package raguard keeps the VM's bridge from carrying, from a container's access port,
// what only a router or a DHCP server may send: ICMPv6 router advertisements (134) and
// redirects (137), DHCPv4 server messages (UDP source port 67) and DHCPv6 server
// messages (UDP source port 547). Neither OVN's port security nor Neutron's ACLs filter
// them on the hypervisor, and security groups can only allow; a container that sends a
// router advertisement would otherwise give every endpoint of its network that accepts
// them a rogue prefix or default router.
//
// The guard is a set of OpenFlow flows on the bridge, all with ovn-docker's cookie, so
// that only they are ever read, replaced or deleted: per guarded kind, a drop, and above
// it a NORMAL for the uplink (the real router and DHCP servers are behind it) and for
// the bridge's own port (the VM's). Everything else keeps the bridge's NORMAL
// forwarding. Open vSwitch parses IPv6 extension headers, so a router advertisement
// behind a hop-by-hop header matches too.
//
// Flows do not survive an ovs-vswitchd restart: Ensure is called wherever ovn-docker
// makes sure of the bridge (each attach, the agent's start, setup), and doctor checks.
package raguard

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/openflow"
)

// Cookie marks the guard's flows ("ovndrag" and a version byte).
const Cookie uint64 = 0x6f766e6472616701

// Priorities: above anything a VM's bridge usually has (NORMAL at 0).
const (
	PrioDrop  = 60000
	PrioAllow = PrioDrop + 1
)

// Kind is one guarded kind of packet.
type Kind struct {
	Name  string
	Match openflow.Match
}

// Kinds are what a container may not send.
var Kinds = []Kind{
	{"router advertisement", openflow.Match{openflow.EthType(0x86dd), openflow.IPProto(58), openflow.ICMPv6Type(134)}},
	{"redirect", openflow.Match{openflow.EthType(0x86dd), openflow.IPProto(58), openflow.ICMPv6Type(137)}},
	{"DHCPv4 server", openflow.Match{openflow.EthType(0x0800), openflow.IPProto(17), openflow.UDPSrc(67)}},
	{"DHCPv6 server", openflow.Match{openflow.EthType(0x86dd), openflow.IPProto(17), openflow.UDPSrc(547)}},
}

// Flows is the guard for a bridge whose uplink is OpenFlow port uplink.
func Flows(uplink uint32) []openflow.Flow {
	var out []openflow.Flow
	for _, k := range Kinds {
		out = append(out, openflow.Flow{Priority: PrioDrop, Cookie: Cookie, Match: k.Match})
		for _, p := range []uint32{uplink, openflow.PortLocal} {
			m := append(openflow.Match{openflow.InPort(p)}, k.Match...)
			out = append(out, openflow.Flow{Priority: PrioAllow, Cookie: Cookie, Match: m, Output: []uint32{openflow.PortNormal}})
		}
	}
	return out
}

// Diff says which of want are not in have, and which of have are not in want.
func Diff(want, have []openflow.Flow) (missing, extra []openflow.Flow) {
	in := func(f openflow.Flow, set []openflow.Flow) bool {
		for _, g := range set {
			if f.Equal(g) {
				return true
			}
		}
		return false
	}
	for _, f := range want {
		if !in(f, have) {
			missing = append(missing, f)
		}
	}
	for _, f := range have {
		if !in(f, want) {
			extra = append(extra, f)
		}
	}
	return missing, extra
}

// Plan is what makes have into want: adds first, so the guard never has a gap (an add
// replaces a flow of the same match and priority), then deletes of stale ones (an old
// uplink's port).
func Plan(want, have []openflow.Flow) []openflow.Mod {
	missing, extra := Diff(want, have)
	var mods []openflow.Mod
	for _, f := range missing {
		mods = append(mods, openflow.Add(f))
	}
	for _, f := range extra {
		if f.Cookie == Cookie {
			mods = append(mods, openflow.DeleteStrict(f))
		}
	}
	return mods
}

// socket is the bridge's OpenFlow socket.
func (g *Guard) socket() (string, error) {
	if g.RunDir != "" {
		return filepath.Join(g.RunDir, g.Bridge+".mgmt"), nil
	}
	return MgmtSocket(g.OVSDB, g.Bridge)
}

// MgmtSocket is where ovs-vswitchd listens for OpenFlow on bridge: <rundir>/<bridge>.mgmt,
// the rundir being its database socket's directory (ovsdb endpoint "unix:PATH").
func MgmtSocket(ovsdb, bridge string) (string, error) {
	path, ok := strings.CutPrefix(ovsdb, "unix:")
	if !ok || path == "" {
		return "", fmt.Errorf("the OpenFlow socket of %s is found next to a local database socket (unix:PATH), not %q: give ovs-vswitchd's run directory (--ovs-rundir)", bridge, ovsdb)
	}
	return filepath.Join(filepath.Dir(path), bridge+".mgmt"), nil
}

// Switch is what the guard asks of the VM's Open vSwitch database; *ovs.Client
// implements it.
type Switch interface {
	// AcceptOpenFlow13 adds OpenFlow13 to the bridge's protocols when they are set and
	// leave it out.
	AcceptOpenFlow13(ctx context.Context, bridge string) error
}

// Guard is the guard of one bridge.
type Guard struct {
	Switch         Switch
	OVSDB          string // the database's endpoint, to find the OpenFlow socket
	RunDir         string // ovs-vswitchd's run directory, when not OVSDB's
	Bridge, Uplink string
}

// ErrUplink: the uplink is not a port of the bridge (not added, or not opened).
var ErrUplink = errors.New("the uplink is not an OpenFlow port of the bridge")

// dial connects to the bridge's OpenFlow socket, after making sure it speaks 1.3.
func (g *Guard) dial(ctx context.Context) (*openflow.Conn, error) {
	sock, err := g.socket()
	if err != nil {
		return nil, err
	}
	if err := g.Switch.AcceptOpenFlow13(ctx, g.Bridge); err != nil {
		return nil, err
	}
	return openflow.Dial(ctx, sock)
}

// read gives the flows the guard wants, from the uplink's port number as the switch
// says it (the number the flows name), and those of its cookie the bridge has.
func (g *Guard) read(ctx context.Context, c *openflow.Conn) (want, have []openflow.Flow, err error) {
	ports, err := c.Ports(ctx)
	if err != nil {
		return nil, nil, err
	}
	var uplink *openflow.Port
	for i := range ports {
		if ports[i].Name == g.Uplink {
			uplink = &ports[i]
		}
	}
	if uplink == nil {
		return nil, nil, fmt.Errorf("%s: %w %s", g.Uplink, ErrUplink, g.Bridge)
	}
	if have, err = c.Flows(ctx, Cookie, ^uint64(0)); err != nil {
		return nil, nil, err
	}
	return Flows(uplink.No), have, nil
}

// ensure puts the guard right on c; it returns the flow mods it took.
func (g *Guard) ensure(ctx context.Context, c *openflow.Conn) (int, error) {
	want, have, err := g.read(ctx, c)
	if err != nil {
		return 0, err
	}
	mods := Plan(want, have)
	if len(mods) == 0 {
		return 0, nil
	}
	if err := c.Apply(ctx, mods...); err != nil {
		return 0, err
	}
	return len(mods), nil
}

// Ensure installs the guard, or puts right what differs; it changes nothing when the
// guard is in place. It returns how many flow mods it sent.
func (g *Guard) Ensure(ctx context.Context) (int, error) {
	c, err := g.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return g.ensure(ctx, c)
}

// Check reads the guard: the flows missing from the bridge, and those of ovn-docker's
// cookie that should not be there.
func (g *Guard) Check(ctx context.Context) (missing, extra []openflow.Flow, err error) {
	sock, err := g.socket()
	if err != nil {
		return nil, nil, err
	}
	c, err := openflow.Dial(ctx, sock)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	want, have, err := g.read(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	missing, extra = Diff(want, have)
	return missing, extra, nil
}

// Pause bounds between attempts to reach a switch that went away (ovs-vswitchd
// restarting takes about a second).
const (
	retryMin = 100 * time.Millisecond
	retryMax = 2 * time.Second
)

// Watch keeps the guard in place until ctx ends: at once, each time the uplink's port
// changes (re-added, it may get another number), and each time the switch comes back
// after its connection dropped (an ovs-vswitchd restart loses every flow). report is
// told the outcome of each attempt: the flow mods it took, or why it failed.
func (g *Guard) Watch(ctx context.Context, report func(mods int, err error)) {
	wait := retryMin
	for ctx.Err() == nil {
		connected, err := g.watchOnce(ctx, report)
		if ctx.Err() != nil {
			return
		}
		if connected {
			wait = retryMin
		}
		report(0, fmt.Errorf("ra guard watch: %w; again in %v", err, wait))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
	}
}

// watchOnce is one connection's watch; it returns when the connection fails.
func (g *Guard) watchOnce(ctx context.Context, report func(int, error)) (connected bool, err error) {
	c, err := g.dial(ctx)
	if err != nil {
		return false, err
	}
	defer c.Close()
	if err := c.WatchPorts(ctx); err != nil {
		return true, err
	}
	// Ensured after asking for port changes: a change from now on is seen.
	report(g.ensure(ctx, c))
	for {
		ps, err := c.NextPortStatus(ctx)
		if err != nil {
			return true, err
		}
		if ps.Port.Name == g.Uplink {
			report(g.ensure(ctx, c))
		}
	}
}
