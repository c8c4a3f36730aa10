package netdev

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"sort"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// maxDumpAttempts bounds retries of a link dump that the kernel reports as
// interrupted by concurrent changes.
const maxDumpAttempts = 5

// CreatePair creates a veth pair in the caller's netns: hostName up,
// peerName down, both with TX checksum offload off and, if mtu > 0, that MTU.
// It is idempotent: if exactly this pair already exists it only brings it to
// that state. A name taken by anything else yields ErrNameInUse.
func CreatePair(ctx context.Context, hostName, peerName string, mtu int) error {
	_, err := createPair(ctx, hostName, peerName, mtu)
	return err
}

// createPair is CreatePair that also reports whether this call made the pair,
// so that Create removes only what it made.
func createPair(ctx context.Context, hostName, peerName string, mtu int) (bool, error) {
	if err := validatePair(hostName, peerName, mtu); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	attrs := netlink.NewLinkAttrs() // keeps the kernel's default queue length
	attrs.Name = hostName
	attrs.MTU = mtu
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: peerName}
	if err := netlink.LinkAdd(veth); err != nil {
		if !errors.Is(err, unix.EEXIST) {
			return false, fmt.Errorf("create veth %s/%s: %w", hostName, peerName, err)
		}
		return false, adoptPair(hostName, peerName, mtu)
	}
	if err := setupPair(veth, peerName); err != nil {
		if derr := deleteLink(hostName); derr != nil {
			err = errors.Join(err, derr)
		}
		return false, err
	}
	return true, nil
}

func validatePair(hostName, peerName string, mtu int) error {
	if err := validName(hostName); err != nil {
		return fmt.Errorf("host name: %w", err)
	}
	if err := validName(peerName); err != nil {
		return fmt.Errorf("peer name: %w", err)
	}
	if hostName == peerName {
		return fmt.Errorf("peer name %q equals host name: %w", peerName, ErrInvalidSpec)
	}
	if mtu < 0 {
		return fmt.Errorf("negative mtu %d: %w", mtu, ErrInvalidSpec)
	}
	return nil
}

// setupPair finishes a pair: both ends without TX checksum offload, host
// end up. The peer stays down until it is configured in its container. An
// empty peerName means the peer is not in this netns and is handled there.
func setupPair(host netlink.Link, peerName string) error {
	hostName := host.Attrs().Name
	if err := disableTXChecksum(hostName); err != nil {
		return fmt.Errorf("disable tx checksum on %s: %w", hostName, err)
	}
	if peerName != "" {
		if err := disableTXChecksum(peerName); err != nil {
			return fmt.Errorf("disable tx checksum on %s: %w", peerName, err)
		}
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("set %s up: %w", hostName, err)
	}
	return nil
}

// adoptPair accepts an existing pair (a retry, or a pooled pair) only if
// hostName and peerName are the two ends of one veth in this netns.
func adoptPair(hostName, peerName string, mtu int) error {
	host, err := netlink.LinkByName(hostName)
	if isNotFound(err) {
		return fmt.Errorf("create veth %s/%s: %s: %w", hostName, peerName, peerName, ErrNameInUse)
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", hostName, err)
	}
	peer, err := netlink.LinkByName(peerName)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("look up %s: %w", peerName, err)
	}
	if err != nil || !isPair(host, peer) {
		return fmt.Errorf("create veth %s/%s: %s exists but is not paired with %s here: %w",
			hostName, peerName, hostName, peerName, ErrNameInUse)
	}
	for _, l := range []netlink.Link{host, peer} {
		if mtu > 0 && l.Attrs().MTU != mtu {
			if err := netlink.LinkSetMTU(l, mtu); err != nil {
				return fmt.Errorf("set mtu %d on %s: %w", mtu, l.Attrs().Name, err)
			}
		}
	}
	if peer.Attrs().Flags&net.FlagUp != 0 {
		if err := netlink.LinkSetDown(peer); err != nil {
			return fmt.Errorf("set %s down: %w", peerName, err)
		}
	}
	return setupPair(host, peerName)
}

// isPair reports whether a and b are the two ends of one veth in this netns.
// IFLA_LINK of a veth is its peer's index, and carries no netns id when the
// peer is in the same netns.
func isPair(a, b netlink.Link) bool {
	if a.Type() != "veth" || b.Type() != "veth" {
		return false
	}
	aa, ba := a.Attrs(), b.Attrs()
	return aa.ParentIndex == ba.Index && ba.ParentIndex == aa.Index && aa.NetNsID < 0 && ba.NetNsID < 0
}

// MoveIn moves the existing peer s.PeerName from the caller's netns into
// s.NetNS, renames it s.IfName there, and sets MAC, MTU (on both ends),
// addresses (IPv6 without DAD, usable at once), link up and default routes.
// On failure the peer is back in the caller's netns under its name, down and
// without addresses, with the old MTUs; if even that fails the pair is
// deleted, never left half-configured in the container.
func MoveIn(ctx context.Context, s Spec) error {
	if err := s.validate(false); err != nil {
		return err
	}
	return moveIn(ctx, s, s.peerName())
}

func moveIn(ctx context.Context, s Spec, peerName string) (retErr error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	peer, err := netlink.LinkByName(peerName)
	if err != nil {
		return fmt.Errorf("look up %s: %w", peerName, err)
	}
	if peer.Type() != "veth" {
		return fmt.Errorf("move %s into %s: is a %s, not a veth", peerName, s.NetNS, peer.Type())
	}
	target, err := ns.GetNS(s.NetNS)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", s.NetNS, err)
	}
	defer target.Close()

	if s.MTU > 0 && peer.Attrs().MTU != s.MTU {
		// A pooled pair may have been made for another MTU; both ends must
		// agree or large frames die silently at the smaller end.
		undo, err := syncMTU(peer, s.MTU)
		if err != nil {
			return err
		}
		defer func() {
			if retErr != nil {
				if uerr := undo(); uerr != nil {
					retErr = errors.Join(retErr, uerr)
				}
			}
		}()
	}

	if err := netlink.LinkSetNsFd(peer, int(target.Fd())); err != nil {
		if errors.Is(err, unix.EEXIST) {
			err = fmt.Errorf("%w: %w", ErrNameInUse, err)
		}
		return fmt.Errorf("move %s into %s: %w", peerName, s.NetNS, err)
	}
	return target.Do(func(hostNS ns.NetNS) error {
		index, err := configureInside(s, peerName)
		if err != nil && index > 0 {
			if rerr := restorePeer(index, peerName, hostNS); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return err
	})
}

// syncMTU sets mtu on peer and on its other end in the caller's netns and
// returns how to restore the old values.
func syncMTU(peer netlink.Link, mtu int) (func() error, error) {
	peerName := peer.Attrs().Name
	host, err := netlink.LinkByIndex(peer.Attrs().ParentIndex)
	if err != nil || !isPair(host, peer) {
		return nil, fmt.Errorf("find other end of %s: not in this netns", peerName)
	}
	hostName := host.Attrs().Name
	oldHost, oldPeer := host.Attrs().MTU, peer.Attrs().MTU
	if err := netlink.LinkSetMTU(host, mtu); err != nil {
		return nil, fmt.Errorf("set mtu %d on %s: %w", mtu, hostName, err)
	}
	if err := netlink.LinkSetMTU(peer, mtu); err != nil {
		err = fmt.Errorf("set mtu %d on %s: %w", mtu, peerName, err)
		if rerr := netlink.LinkSetMTU(host, oldHost); rerr != nil {
			err = errors.Join(err, fmt.Errorf("restore mtu %d on %s: %w", oldHost, hostName, rerr))
		}
		return nil, err
	}
	undo := func() error {
		var errs []error
		for _, r := range []struct {
			name string
			mtu  int
		}{{hostName, oldHost}, {peerName, oldPeer}} {
			l, err := netlink.LinkByName(r.name)
			if isNotFound(err) {
				continue // the pair was deleted by the rollback: nothing to restore
			}
			if err == nil {
				err = netlink.LinkSetMTU(l, r.mtu)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("restore mtu %d on %s: %w", r.mtu, r.name, err))
			}
		}
		return errors.Join(errs...)
	}
	return undo, nil
}

// configureInside turns the peer, already in the container's netns, into
// s.IfName. It runs in that netns on a locked thread and returns the peer's
// index there (0 if it was not found) so that the caller can undo.
func configureInside(s Spec, peerName string) (int, error) {
	// Indexes are per netns: look the peer up again here.
	link, err := netlink.LinkByName(peerName)
	if err != nil {
		return 0, fmt.Errorf("look up %s in %s: %w", peerName, s.NetNS, err)
	}
	return link.Attrs().Index, configureLink(s, peerName, link)
}

// configureLink does the steps of configureInside once the peer is found.
func configureLink(s Spec, peerName string, link netlink.Link) error {
	switch _, err := netlink.LinkByName(s.IfName); {
	case err == nil:
		return fmt.Errorf("rename %s to %s in %s: %s already exists: %w", peerName, s.IfName, s.NetNS, s.IfName, ErrNameInUse)
	case !isNotFound(err):
		return fmt.Errorf("look up %s in %s: %w", s.IfName, s.NetNS, err)
	}
	if err := netlink.LinkSetName(link, s.IfName); err != nil {
		if errors.Is(err, unix.EEXIST) {
			err = fmt.Errorf("%w: %w", ErrNameInUse, err)
		}
		return fmt.Errorf("rename %s to %s in %s: %w", peerName, s.IfName, s.NetNS, err)
	}
	if s.MAC != nil {
		if err := netlink.LinkSetHardwareAddr(link, s.MAC); err != nil {
			return fmt.Errorf("set mac %s on %s in %s: %w", s.MAC, s.IfName, s.NetNS, err)
		}
	}
	// Create makes the peer inside the container, so this is where its
	// offload goes off; for a pooled pair it is a cheap guarantee.
	if err := disableTXChecksum(s.IfName); err != nil {
		return fmt.Errorf("disable tx checksum on %s in %s: %w", s.IfName, s.NetNS, err)
	}
	if hasIPv6(s.Addrs) {
		if err := enableIPv6(s.IfName); err != nil {
			return fmt.Errorf("%w in %s", err, s.NetNS)
		}
	}
	for _, a := range s.Addrs {
		addr := &netlink.Addr{IPNet: &a}
		if a.IP.To4() == nil {
			addr.Flags = unix.IFA_F_NODAD // the MAC and IP are Neutron's: no one else has them
		}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add address %s to %s in %s: %w", a.String(), s.IfName, s.NetNS, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up in %s: %w", s.IfName, s.NetNS, err)
	}
	for _, gw := range s.Gateways {
		if err := addDefaultRoute(link.Attrs().Index, gw, s.Addrs); err != nil {
			return fmt.Errorf("add default route via %s on %s in %s: %w", gw, s.IfName, s.NetNS, err)
		}
	}
	return nil
}

// addDefaultRoute routes everything of gw's family via gw. A gateway outside
// every subnet of the interface (Neutron allows it) is declared on-link,
// otherwise the kernel would refuse it as unreachable.
func addDefaultRoute(index int, gw net.IP, addrs []net.IPNet) error {
	bits := net.IPv6len * 8
	if gw.To4() != nil {
		bits = net.IPv4len * 8
	}
	r := &netlink.Route{
		LinkIndex: index,
		Dst:       &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, bits)},
		Gw:        gw,
		Scope:     netlink.SCOPE_UNIVERSE,
	}
	if bits == net.IPv4len*8 {
		r.Dst.IP = net.IPv4zero.To4()
	}
	if !onLink(gw, addrs) {
		r.Flags = int(netlink.FLAG_ONLINK)
	}
	return netlink.RouteAdd(r)
}

// onLink reports whether the kernel already considers gw directly reachable.
func onLink(gw net.IP, addrs []net.IPNet) bool {
	if gw.IsLinkLocalUnicast() {
		return true
	}
	for _, a := range addrs {
		if a.Contains(gw) {
			return true
		}
	}
	return false
}

// restorePeer undoes a failed MoveIn from inside the container's netns. If
// the peer cannot go back, it is deleted (with its host end) rather than
// left half-configured in the container.
func restorePeer(index int, peerName string, hostNS ns.NetNS) error {
	l, err := netlink.LinkByIndex(index)
	if isNotFound(err) {
		return nil // gone with its pair: nothing left to undo
	}
	if err != nil {
		return fmt.Errorf("roll back %s: look up index %d: %w", peerName, index, err)
	}
	if err := putBack(l, peerName, hostNS); err != nil {
		err = fmt.Errorf("roll back %s: %w", peerName, err)
		if derr := netlink.LinkDel(l); derr != nil && !isNotFound(derr) {
			return errors.Join(err, fmt.Errorf("delete %s: %w", l.Attrs().Name, derr))
		}
		return fmt.Errorf("%w (pair deleted)", err)
	}
	return nil
}

// putBack moves l from the current (container) netns to hostNS as name.
// Renaming first, inside the container, keeps a container name such as eth0
// from clashing with the caller's own interfaces. The kernel closes the link
// and flushes its addresses and routes as it leaves the netns.
func putBack(l netlink.Link, name string, hostNS ns.NetNS) error {
	cur := l.Attrs().Name
	if err := netlink.LinkSetDown(l); err != nil {
		return fmt.Errorf("set %s down: %w", cur, err)
	}
	if cur != name {
		if err := netlink.LinkSetName(l, name); err != nil {
			if errors.Is(err, unix.EEXIST) {
				err = fmt.Errorf("%w: %w", ErrNameInUse, err)
			}
			return fmt.Errorf("rename %s to %s: %w", cur, name, err)
		}
	}
	if err := netlink.LinkSetNsFd(l, int(hostNS.Fd())); err != nil {
		if errors.Is(err, unix.EEXIST) {
			err = fmt.Errorf("%w: %w", ErrNameInUse, err)
		}
		return fmt.Errorf("move %s into %s: %w", name, hostNS.Path(), err)
	}
	return nil
}

// Create is CreatePair followed by MoveIn. On any failure it removes what it
// made: no link is left in the caller's netns nor in s.NetNS. A pair that
// already existed is only put back as MoveIn does.
//
// A new pair is made with its peer directly in s.NetNS: moving a link between
// namespaces waits for an RCU grace period, which would cost more than all
// the other steps together.
func Create(ctx context.Context, s Spec) error {
	if err := s.validate(true); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	target, err := ns.GetNS(s.NetNS)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", s.NetNS, err)
	}
	defer target.Close()

	peerName := s.peerName()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = s.HostName
	attrs.MTU = s.MTU
	veth := &netlink.Veth{
		LinkAttrs:     attrs,
		PeerName:      peerName,
		PeerNamespace: netlink.NsFd(int(target.Fd())),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EEXIST) {
			// A pair left by an earlier attempt, or a clash in either
			// netns: the step-by-step path tells which, and adopts a
			// matching pair.
			return createThenMove(ctx, s, peerName)
		}
		return fmt.Errorf("create veth %s/%s in %s: %w", s.HostName, peerName, s.NetNS, err)
	}
	err = setupPair(veth, "")
	if err == nil {
		err = target.Do(func(ns.NetNS) error {
			_, err := configureInside(s, peerName)
			return err
		})
	}
	if err != nil {
		// Removing the host end removes the peer too, wherever it is.
		if derr := deleteLink(s.HostName); derr != nil {
			err = errors.Join(err, derr)
		}
		return err
	}
	return nil
}

// createThenMove is Create as its two public steps.
func createThenMove(ctx context.Context, s Spec, peerName string) error {
	created, err := createPair(ctx, s.HostName, peerName, s.MTU)
	if err != nil {
		return err
	}
	if err := moveIn(ctx, s, peerName); err != nil {
		if created {
			if derr := deleteLink(s.HostName); derr != nil {
				err = errors.Join(err, derr)
			}
		}
		return err
	}
	return nil
}

// Delete removes the pair whose host end is hostName; the container end goes
// with it. A missing link is not an error. It refuses to delete anything but
// a veth, so a wrong name cannot take down the VM's own interfaces.
func Delete(ctx context.Context, hostName string) error {
	if err := validName(hostName); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return deleteLink(hostName)
}

func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if l.Type() != "veth" {
		return fmt.Errorf("delete %s: is a %s, not a veth: %w", name, l.Type(), ErrNameInUse)
	}
	if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// Reclaim moves the container interface ifName in nsPath back into the
// caller's netns as peerName, down and without addresses, so that a pool can
// reuse the plumbed pair with MoveIn. If the netns or the interface no longer
// exists it returns an error wrapping ErrGone. If it fails after touching the
// interface, it deletes the pair: a half-reclaimed pair is worth nothing.
func Reclaim(ctx context.Context, nsPath, ifName, peerName string) error {
	if nsPath == "" {
		return fmt.Errorf("empty netns path: %w", ErrInvalidSpec)
	}
	if err := validName(ifName); err != nil {
		return fmt.Errorf("container interface name: %w", err)
	}
	if err := validName(peerName); err != nil {
		return fmt.Errorf("peer name: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	target, err := ns.GetNS(nsPath)
	if err != nil {
		if isNSGone(err) {
			return fmt.Errorf("open netns %s: %w: %w", nsPath, ErrGone, err)
		}
		return fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer target.Close()

	err = target.Do(func(hostNS ns.NetNS) error {
		l, err := netlink.LinkByName(ifName)
		if isNotFound(err) {
			return fmt.Errorf("look up %s in %s: %w", ifName, nsPath, ErrGone)
		}
		if err != nil {
			return fmt.Errorf("look up %s in %s: %w", ifName, nsPath, err)
		}
		if l.Type() != "veth" {
			return fmt.Errorf("reclaim %s in %s: is a %s, not a veth", ifName, nsPath, l.Type())
		}
		if err := putBack(l, peerName, hostNS); err != nil {
			err = fmt.Errorf("reclaim %s from %s: %w", ifName, nsPath, err)
			if derr := netlink.LinkDel(l); derr != nil && !isNotFound(derr) {
				return errors.Join(err, fmt.Errorf("delete %s in %s: %w", ifName, nsPath, derr))
			}
			return fmt.Errorf("%w (pair deleted)", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A new netns means a new index: find the link again by its new name.
	if _, err := netlink.LinkByName(peerName); err != nil {
		return fmt.Errorf("look up %s after reclaim: %w", peerName, err)
	}
	return nil
}

// isNSGone tells a netns that no longer exists (a dead process's
// /proc/PID/ns/net, or an unmounted bind mount left as a plain file) from
// other failures to open it.
func isNSGone(err error) bool {
	var notExist ns.NSPathNotExistErr
	var notNS ns.NSPathNotNSErr
	return errors.As(err, &notExist) || errors.As(err, &notNS) ||
		errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
}

// Exists reports whether a veth named hostName exists in the caller's netns.
// A non-veth link of that name is an error (ErrNameInUse).
func Exists(ctx context.Context, hostName string) (bool, error) {
	if err := validName(hostName); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	l, err := netlink.LinkByName(hostName)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", hostName, err)
	}
	if l.Type() != "veth" {
		return false, fmt.Errorf("%s is a %s, not a veth: %w", hostName, l.Type(), ErrNameInUse)
	}
	return true, nil
}

// List returns, sorted, the names of the veths in the caller's netns that
// start with prefix (HostPrefix for host ends), for garbage collection.
func List(ctx context.Context, prefix string) ([]string, error) {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		links, err := netlink.LinkList()
		if errors.Is(err, netlink.ErrDumpInterrupted) && attempt < maxDumpAttempts {
			continue // links changed during the dump: the result may be incomplete
		}
		if err != nil {
			return nil, fmt.Errorf("list links: %w", err)
		}
		var names []string
		for _, l := range links {
			if l.Type() == "veth" && strings.HasPrefix(l.Attrs().Name, prefix) {
				names = append(names, l.Attrs().Name)
			}
		}
		sort.Strings(names)
		return names, nil
	}
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// CreatePairMAC is CreatePair with the peer given a MAC: the container end keeps it when
// Docker moves it into a container, so it carries Neutron's address from the start. A
// failure removes a pair this call made.
func CreatePairMAC(ctx context.Context, hostName, peerName string, mtu int, mac net.HardwareAddr) error {
	made, err := createPair(ctx, hostName, peerName, mtu)
	if err != nil || mac == nil {
		return err
	}
	peer, err := netlink.LinkByName(peerName)
	if err == nil {
		err = netlink.LinkSetHardwareAddr(peer, mac)
	}
	if err != nil {
		err = fmt.Errorf("set mac %s on %s: %w", mac, peerName, err)
		if made {
			if derr := deleteLink(hostName); derr != nil {
				err = errors.Join(err, derr)
			}
		}
		return err
	}
	return nil
}
