//go:build integration

package netdev

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestTXChecksumReader(t *testing.T) {
	vm := newNS(t)
	// The reader must be able to say "on", or asserting "off" proves nothing.
	if !vm.txChecksum(t, "lo") {
		t.Fatal("lo reports tx checksum off; the kernel offloads it on lo")
	}
	vm.must(t, "add veth", func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = "rawa"
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "rawb"})
	})
	if !vm.txChecksum(t, "rawa") {
		t.Fatal("fresh veth reports tx checksum off; expected the kernel default (on)")
	}
	vm.must(t, "disable tx checksum", func() error { return disableTXChecksum("rawa") })
	if vm.txChecksum(t, "rawa") {
		t.Error("tx checksum still on after disableTXChecksum")
	}
	if !vm.txChecksum(t, "rawb") {
		t.Error("disabling one end changed the other")
	}
	err := vm.in(func() error {
		_, err := TXChecksum(context.Background(), "nosuchlink")
		return err
	})
	if !errors.Is(err, unix.ENODEV) {
		t.Errorf("TXChecksum of a missing link: %v, want ENODEV", err)
	}
}

func TestCreate(t *testing.T) {
	vm, ctr := newNS(t), newNS(t)
	s := testSpec(t, 7, ctr.Path())
	if err := create(vm, s); err != nil {
		t.Fatalf("Create: %v", err)
	}

	// Host side: only the host end, up, right MTU, no TX checksum offload.
	if got, want := vm.linkNames(t), []string{s.HostName}; !slices.Equal(got, want) {
		t.Errorf("links in vm netns = %v, want %v", got, want)
	}
	host := vm.link(t, s.HostName)
	if host.Type() != "veth" || host.Attrs().Flags&net.FlagUp == 0 || host.Attrs().MTU != s.MTU {
		t.Errorf("host end: type %s flags %v mtu %d, want veth, up, mtu %d", host.Type(), host.Attrs().Flags, host.Attrs().MTU, s.MTU)
	}
	if vm.txChecksum(t, s.HostName) {
		t.Error("host end has tx checksum offload on")
	}

	// Container side.
	if got, want := ctr.linkNames(t), []string{"eth0"}; !slices.Equal(got, want) {
		t.Fatalf("links in container netns = %v, want %v", got, want)
	}
	eth0 := ctr.link(t, "eth0")
	a := eth0.Attrs()
	if eth0.Type() != "veth" {
		t.Errorf("eth0 type %s, want veth", eth0.Type())
	}
	if a.HardwareAddr.String() != s.MAC.String() {
		t.Errorf("eth0 mac %s, want %s", a.HardwareAddr, s.MAC)
	}
	if a.MTU != s.MTU {
		t.Errorf("eth0 mtu %d, want %d", a.MTU, s.MTU)
	}
	if a.Flags&net.FlagUp == 0 {
		t.Error("eth0 is not admin up")
	}
	// The kernel reports carrier (oper state up) on its own time: wait for its event.
	ctr.waitLinks(t, "eth0 oper state up", func() bool { return ctr.link(t, "eth0").Attrs().OperState == netlink.OperUp })
	if ctr.txChecksum(t, "eth0") {
		t.Error("eth0 has tx checksum offload on")
	}
	addrs := ctr.addrsOf(t, "eth0")
	if got, want := globalAddrs(addrs), []string{"10.7.0.2/24", "2001:db8:7::2/64"}; !slices.Equal(got, want) {
		t.Errorf("eth0 addresses %v, want %v", got, want)
	}
	if f := addrs["2001:db8:7::2/64"]; f&unix.IFA_F_NODAD == 0 {
		t.Errorf("IPv6 address flags %#x lack nodad", f)
	}
	// Without nodad DAD keeps the address tentative for a second or more; with it the
	// kernel never marks it tentative, whatever the link's state: usable at once.
	if f := ctr.addrsOf(t, "eth0")["2001:db8:7::2/64"]; f&unix.IFA_F_TENTATIVE != 0 {
		t.Errorf("IPv6 address flags %#x: tentative, not usable at once", f)
	}
	if got, want := ctr.defaultGateways(t, "eth0"), []string{"10.7.0.1", "2001:db8:7::1"}; !slices.Equal(got, want) {
		t.Errorf("default routes via %v, want %v", got, want)
	}

	// Real packets: the VM reaches the container, and the container reaches
	// an address beyond its subnets through its default routes.
	vm.addAddr(t, s.HostName, "10.7.0.1/24")
	vm.addAddr(t, s.HostName, "2001:db8:7::1/64")
	vm.addAddr(t, s.HostName, "192.0.2.1/32")
	vm.addAddr(t, s.HostName, "2001:db8:ffff::1/128")
	for _, c := range []struct {
		from *testNS
		to   string
	}{{vm, "10.7.0.2"}, {vm, "2001:db8:7::2"}, {ctr, "192.0.2.1"}, {ctr, "2001:db8:ffff::1"}} {
		if err := c.from.ping(t, c.to); err != nil {
			t.Error(err)
		}
	}
}

// TestTXChecksumOnTheWire shows why offload must be off: what an AF_PACKET
// reader (OVS's userspace datapath) sees of a UDP datagram from the container.
func TestTXChecksumOnTheWire(t *testing.T) {
	vm, ctr := newNS(t), newNS(t)
	s := testSpec(t, 8, ctr.Path())
	s.Gateways = nil
	if err := create(vm, s); err != nil {
		t.Fatalf("Create: %v", err)
	}
	vm.addAddr(t, s.HostName, "10.8.0.1/24")

	if !udpChecksumSeen(t, vm, ctr, s.HostName, "10.8.0.1") {
		t.Error("captured UDP checksum is wrong with offload disabled")
	}
	// Control: with offload back on, the capture must show the partial
	// checksum, or the check above could not have failed.
	ctr.must(t, "enable tx checksum", func() error {
		_, err := ethtool("eth0", unix.ETHTOOL_STXCSUM, 1)
		return err
	})
	if udpChecksumSeen(t, vm, ctr, s.HostName, "10.8.0.1") {
		t.Error("control: captured UDP checksum is valid with offload enabled; the probe cannot tell")
	}
}

func TestCreateRollback(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, ctr *testNS, s Spec) // occupies a name in the container
		mutate  func(s *Spec)
		step    string // the step the error must name
		wantErr error
		keep    []string // links the container had before and must still have
	}{{
		name:   "bad netns path",
		mutate: func(s *Spec) { s.NetNS = "/nonexistent/netns" },
		step:   "open netns /nonexistent/netns",
	}, {
		name:    "ifname taken in container",
		setup:   func(t *testing.T, ctr *testNS, _ Spec) { ctr.addBridge(t, "eth0") },
		step:    "rename odc",
		wantErr: ErrNameInUse,
		keep:    []string{"eth0"},
	}, {
		// The pair cannot be made with its peer in the container, so
		// Create falls back to making it here and moving the peer.
		name:    "temporary name taken in container",
		setup:   func(t *testing.T, ctr *testNS, s Spec) { ctr.addBridge(t, s.peerName()) },
		step:    "move odc",
		wantErr: ErrNameInUse,
		keep:    []string{PeerName(testPort(22))},
	}, {
		name:   "multicast mac",
		mutate: func(s *Spec) { s.MAC = net.HardwareAddr{0x01, 0x00, 0x5e, 0, 0, 1} },
		step:   "set mac 01:00:5e:00:00:01 on eth0",
	}, {
		name: "address the kernel refuses",
		mutate: func(s *Spec) {
			// The valid v4 address goes in first, so rollback must remove it.
			s.Addrs = append(s.Addrs, net.IPNet{IP: net.ParseIP("ff02::5"), Mask: net.CIDRMask(64, 128)})
		},
		step: "add address ff02::5/64 to eth0",
	}, {
		name:   "gateway the kernel refuses",
		mutate: func(s *Spec) { s.Gateways = []net.IP{net.ParseIP("224.0.0.1")} },
		step:   "add default route via 224.0.0.1 on eth0",
	}}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vm, ctr := newNS(t), newNS(t)
			s := testSpec(t, 20+i, ctr.Path())
			if c.mutate != nil {
				c.mutate(&s)
			}
			if c.setup != nil {
				c.setup(t, ctr, s)
			}
			err := create(vm, s)
			if err == nil {
				t.Fatal("Create succeeded, want an error")
			}
			if !strings.Contains(err.Error(), c.step) || !isErr(err, c.wantErr) {
				t.Errorf("error %q: want it to name step %q and wrap %v", err, c.step, c.wantErr)
			}
			if got := vm.linkNames(t); len(got) != 0 {
				t.Errorf("links left in vm netns: %v", got)
			}
			if got := ctr.linkNames(t); !slices.Equal(got, c.keep) {
				t.Errorf("links in container netns = %v, want %v", got, c.keep)
			}
			for _, name := range c.keep {
				if l := ctr.link(t, name); l.Type() != "bridge" {
					t.Errorf("pre-existing %s replaced by a %s", name, l.Type())
				}
			}
		})
	}
}

// TestCreateAdoptsParkedPair covers a retry: the pair already exists in the
// caller's netns (CreatePair done, MoveIn not), and Create finishes the job.
// If the retry fails, the pair it did not make stays, restored.
func TestCreateAdoptsParkedPair(t *testing.T) {
	vm, ctr := newNS(t), newNS(t)
	ctx := context.Background()
	s := testSpec(t, 9, ctr.Path())
	vm.must(t, "CreatePair", func() error { return CreatePair(ctx, s.HostName, s.peerName(), 1500) })

	bad := s
	bad.Gateways = []net.IP{net.ParseIP("224.0.0.1")}
	if err := create(vm, bad); err == nil {
		t.Fatal("Create with a refused gateway succeeded")
	}
	if got, want := vm.linkNames(t), []string{s.peerName(), s.HostName}; !slices.Equal(got, want) {
		t.Errorf("after a failed retry vm links = %v, want the parked pair %v", got, want)
	}
	if got := ctr.linkNames(t); len(got) != 0 {
		t.Errorf("after a failed retry container links = %v", got)
	}

	if err := create(vm, s); err != nil {
		t.Fatalf("Create over a parked pair: %v", err)
	}
	if got, want := vm.linkNames(t), []string{s.HostName}; !slices.Equal(got, want) {
		t.Errorf("vm links = %v, want %v", got, want)
	}
	if got, want := ctr.linkNames(t), []string{"eth0"}; !slices.Equal(got, want) {
		t.Errorf("container links = %v, want %v", got, want)
	}
	if got := vm.link(t, s.HostName).Attrs().MTU; got != s.MTU {
		t.Errorf("host end mtu %d, want %d", got, s.MTU)
	}
	if ctr.txChecksum(t, "eth0") {
		t.Error("eth0 has tx checksum offload on")
	}
}

func TestCreateCancelled(t *testing.T) {
	vm, ctr := newNS(t), newNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := vm.in(func() error { return Create(ctx, testSpec(t, 1, ctr.Path())) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Create with a cancelled context: %v, want context.Canceled", err)
	}
	if got := append(vm.linkNames(t), ctr.linkNames(t)...); len(got) != 0 {
		t.Errorf("links created despite cancellation: %v", got)
	}
}

func TestCreatePairIdempotent(t *testing.T) {
	vm := newNS(t)
	ctx := context.Background()
	pair := func(host, peer string, mtu int) error {
		return vm.in(func() error { return CreatePair(ctx, host, peer, mtu) })
	}
	if err := pair("odvpair", "odcpair", 1450); err != nil {
		t.Fatalf("CreatePair: %v", err)
	}
	check := func(mtu int) {
		t.Helper()
		host, peer := vm.link(t, "odvpair"), vm.link(t, "odcpair")
		if !isPair(host, peer) {
			t.Error("odvpair and odcpair are not one veth pair")
		}
		if host.Attrs().Flags&net.FlagUp == 0 || peer.Attrs().Flags&net.FlagUp != 0 {
			t.Errorf("host flags %v, peer flags %v: want host up, peer down", host.Attrs().Flags, peer.Attrs().Flags)
		}
		if host.Attrs().MTU != mtu || peer.Attrs().MTU != mtu {
			t.Errorf("mtus %d/%d, want %d", host.Attrs().MTU, peer.Attrs().MTU, mtu)
		}
		if vm.txChecksum(t, "odvpair") || vm.txChecksum(t, "odcpair") {
			t.Error("tx checksum offload on")
		}
	}
	check(1450)

	// Same pair again, even after someone brought the peer up and changed the MTU.
	vm.must(t, "disturb pair", func() error {
		p, err := netlink.LinkByName("odcpair")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(p)
	})
	if err := pair("odvpair", "odcpair", 1300); err != nil {
		t.Fatalf("CreatePair of an existing pair: %v", err)
	}
	check(1300)

	// Names taken by something that is not this pair.
	vm.addBridge(t, "odcother")
	for _, c := range []struct{ host, peer string }{
		{"odvpair", "odcnew"},   // host end exists with another peer
		{"odvnew", "odcpair"},   // peer name taken by another pair's end
		{"odvnew2", "odcother"}, // peer name taken by a dummy
		{"odcother", "odcnew3"}, // host name taken by a dummy
	} {
		if err := pair(c.host, c.peer, 0); !errors.Is(err, ErrNameInUse) {
			t.Errorf("CreatePair(%s, %s): %v, want ErrNameInUse", c.host, c.peer, err)
		}
	}
	if got, want := vm.linkNames(t), []string{"odcother", "odcpair", "odvpair"}; !slices.Equal(got, want) {
		t.Errorf("links after refused CreatePairs = %v, want %v", got, want)
	}
}

func TestMoveInFailureRestoresPair(t *testing.T) {
	vm, ctr := newNS(t), newNS(t)
	ctx := context.Background()
	const host, peer = "odvpool", "odcpool"
	vm.must(t, "CreatePair", func() error { return CreatePair(ctx, host, peer, 1500) })

	fail := []struct {
		name   string
		mutate func(*Spec)
		setup  func()
	}{
		{"address refused", func(s *Spec) {
			s.Addrs = append(s.Addrs, net.IPNet{IP: net.ParseIP("ff02::5"), Mask: net.CIDRMask(64, 128)})
		}, nil},
		{"ifname taken", nil, func() { ctr.addBridge(t, "eth0") }},
	}
	for _, f := range fail {
		if f.setup != nil {
			f.setup()
		}
		s := testSpec(t, 30, ctr.Path())
		s.HostName, s.PeerName, s.MTU = "", peer, 1400 // MoveIn also syncs the MTU
		if f.mutate != nil {
			f.mutate(&s)
		}
		before := ctr.linkNames(t)
		if err := vm.in(func() error { return MoveIn(ctx, s) }); err == nil {
			t.Fatalf("%s: MoveIn succeeded, want an error", f.name)
		}
		if got := ctr.linkNames(t); !slices.Equal(got, before) {
			t.Errorf("%s: container links %v, want %v", f.name, got, before)
		}
		if got, want := vm.linkNames(t), []string{peer, host}; !slices.Equal(got, want) {
			t.Fatalf("%s: vm links %v, want %v", f.name, got, want)
		}
		h, p := vm.link(t, host), vm.link(t, peer)
		if !isPair(h, p) || p.Attrs().Flags&net.FlagUp != 0 {
			t.Errorf("%s: pair not restored: paired %v, peer flags %v", f.name, isPair(h, p), p.Attrs().Flags)
		}
		if h.Attrs().MTU != 1500 || p.Attrs().MTU != 1500 {
			t.Errorf("%s: mtus %d/%d not restored to 1500", f.name, h.Attrs().MTU, p.Attrs().MTU)
		}
		if got := globalAddrs(vm.addrsOf(t, peer)); len(got) != 0 {
			t.Errorf("%s: restored peer keeps addresses %v", f.name, got)
		}
	}

	// The restored pair is still usable.
	ctr.must(t, "delete dummy", func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.LinkDel(l)
	})
	s := testSpec(t, 30, ctr.Path())
	s.HostName, s.PeerName = "", peer
	if err := vm.in(func() error { return MoveIn(ctx, s) }); err != nil {
		t.Fatalf("MoveIn after failed attempts: %v", err)
	}
	vm.addAddr(t, host, "10.30.0.1/24")
	if err := vm.ping(t, "10.30.0.2"); err != nil {
		t.Error(err)
	}
}

func TestReclaimAndReuse(t *testing.T) {
	vm, ctr1, ctr2 := newNS(t), newNS(t), newNS(t)
	ctx := context.Background()
	s1 := testSpec(t, 40, ctr1.Path())
	if err := create(vm, s1); err != nil {
		t.Fatalf("Create: %v", err)
	}
	peer := PeerName(testPort(40))
	if err := vm.in(func() error { return Reclaim(ctx, ctr1.Path(), "eth0", peer) }); err != nil {
		t.Fatalf("Reclaim: %v", err)
	}
	if got := ctr1.linkNames(t); len(got) != 0 {
		t.Errorf("container 1 still has %v", got)
	}
	if got, want := vm.linkNames(t), []string{peer, s1.HostName}; !slices.Equal(got, want) {
		t.Fatalf("vm links after Reclaim = %v, want %v", got, want)
	}
	p := vm.link(t, peer)
	if !isPair(vm.link(t, s1.HostName), p) || p.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("reclaimed peer: paired %v, flags %v; want paired and down", isPair(vm.link(t, s1.HostName), p), p.Attrs().Flags)
	}
	if got := globalAddrs(vm.addrsOf(t, peer)); len(got) != 0 {
		t.Errorf("reclaimed peer keeps addresses %v", got)
	}
	if got := vm.defaultGateways(t, peer); len(got) != 0 {
		t.Errorf("reclaimed peer keeps default routes via %v", got)
	}

	// Reuse in another container, with another address, MAC and MTU.
	s2 := testSpec(t, 41, ctr2.Path())
	s2.HostName, s2.PeerName, s2.MTU = "", peer, 1300
	if err := vm.in(func() error { return MoveIn(ctx, s2) }); err != nil {
		t.Fatalf("MoveIn into container 2: %v", err)
	}
	eth0 := ctr2.link(t, "eth0")
	if eth0.Attrs().HardwareAddr.String() != s2.MAC.String() || eth0.Attrs().MTU != 1300 {
		t.Errorf("eth0 in container 2: mac %s mtu %d, want %s 1300", eth0.Attrs().HardwareAddr, eth0.Attrs().MTU, s2.MAC)
	}
	if got := vm.link(t, s1.HostName).Attrs().MTU; got != 1300 {
		t.Errorf("host end mtu %d, want it synced to 1300", got)
	}
	if got, want := globalAddrs(ctr2.addrsOf(t, "eth0")), []string{"10.41.0.2/24", "2001:db8:29::2/64"}; !slices.Equal(got, want) {
		t.Errorf("eth0 in container 2 addresses %v, want %v", got, want)
	}
	if ctr2.txChecksum(t, "eth0") || vm.txChecksum(t, s1.HostName) {
		t.Error("tx checksum offload on after reuse")
	}
	vm.addAddr(t, s1.HostName, "10.41.0.1/24")
	vm.addAddr(t, s1.HostName, "2001:db8:29::1/64")
	for _, dst := range []string{"10.41.0.2", "2001:db8:29::2"} {
		if err := vm.ping(t, dst); err != nil {
			t.Error(err)
		}
	}
}

func TestReclaimGone(t *testing.T) {
	ctx := context.Background()
	t.Run("missing netns path", func(t *testing.T) {
		vm := newNS(t)
		err := vm.in(func() error { return Reclaim(ctx, "/proc/0/ns/net", "eth0", "odcx") })
		if !errors.Is(err, ErrGone) {
			t.Errorf("Reclaim: %v, want ErrGone", err)
		}
	})
	t.Run("interface deleted", func(t *testing.T) {
		vm, ctr := newNS(t), newNS(t)
		s := testSpec(t, 50, ctr.Path())
		if err := create(vm, s); err != nil {
			t.Fatal(err)
		}
		if err := vm.in(func() error { return Delete(ctx, s.HostName) }); err != nil {
			t.Fatal(err)
		}
		err := vm.in(func() error { return Reclaim(ctx, ctr.Path(), "eth0", PeerName(testPort(50))) })
		if !errors.Is(err, ErrGone) {
			t.Errorf("Reclaim: %v, want ErrGone", err)
		}
	})
	t.Run("netns destroyed", func(t *testing.T) {
		vm, ctr := newNS(t), newNS(t)
		s := testSpec(t, 51, ctr.Path())
		if err := create(vm, s); err != nil {
			t.Fatal(err)
		}
		path := ctr.Path()
		if err := ctr.remove(); err != nil {
			t.Fatal(err)
		}
		err := vm.in(func() error { return Reclaim(ctx, path, "eth0", PeerName(testPort(51))) })
		if !errors.Is(err, ErrGone) {
			t.Errorf("Reclaim: %v, want ErrGone", err)
		}
		// The veth dies with the netns; the kernel removes it asynchronously: wait for
		// its event.
		vm.waitLinks(t, "host end gone with its peer's netns", func() bool { return len(vm.linkNames(t)) == 0 })
	})
	t.Run("not a veth", func(t *testing.T) {
		vm, ctr := newNS(t), newNS(t)
		ctr.addBridge(t, "eth0")
		err := vm.in(func() error { return Reclaim(ctx, ctr.Path(), "eth0", "odcx") })
		if err == nil || errors.Is(err, ErrGone) {
			t.Errorf("Reclaim of a dummy: %v, want a non-gone error", err)
		}
		if got := ctr.linkNames(t); !slices.Equal(got, []string{"eth0"}) {
			t.Errorf("container links %v, want the dummy untouched", got)
		}
	})
	t.Run("peer name taken deletes the pair", func(t *testing.T) {
		vm, ctr := newNS(t), newNS(t)
		s := testSpec(t, 52, ctr.Path())
		if err := create(vm, s); err != nil {
			t.Fatal(err)
		}
		vm.addBridge(t, "odcbusy")
		err := vm.in(func() error { return Reclaim(ctx, ctr.Path(), "eth0", "odcbusy") })
		if !errors.Is(err, ErrNameInUse) {
			t.Errorf("Reclaim onto a taken name: %v, want ErrNameInUse", err)
		}
		if got := ctr.linkNames(t); len(got) != 0 {
			t.Errorf("container keeps %v after a failed Reclaim", got)
		}
		if got, want := vm.linkNames(t), []string{"odcbusy"}; !slices.Equal(got, want) {
			t.Errorf("vm links %v, want only the dummy %v", got, want)
		}
	})
}

func TestDelete(t *testing.T) {
	vm, ctr := newNS(t), newNS(t)
	ctx := context.Background()
	s := testSpec(t, 60, ctr.Path())
	if err := create(vm, s); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := vm.in(func() error { return Delete(ctx, s.HostName) }); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
		if got := append(vm.linkNames(t), ctr.linkNames(t)...); len(got) != 0 {
			t.Errorf("after Delete #%d links remain: %v", i+1, got)
		}
	}
	vm.addBridge(t, "odvdummy")
	if err := vm.in(func() error { return Delete(ctx, "odvdummy") }); err == nil {
		t.Error("Delete of a dummy succeeded")
	}
	if got := vm.linkNames(t); !slices.Equal(got, []string{"odvdummy"}) {
		t.Errorf("links %v, want the dummy untouched", got)
	}
}

func TestListAndExists(t *testing.T) {
	vm, ctr := newNS(t), newNS(t)
	ctx := context.Background()
	var want []string
	for i := range 3 {
		host := HostName(testPort(70 + i))
		want = append(want, host)
		vm.must(t, "CreatePair", func() error { return CreatePair(ctx, host, PeerName(testPort(70+i)), 0) })
	}
	s := testSpec(t, 73, ctr.Path())
	if err := create(vm, s); err != nil {
		t.Fatal(err)
	}
	want = append(want, s.HostName)
	vm.addBridge(t, "odvdummy")                                                              // right prefix, not a veth
	vm.must(t, "CreatePair", func() error { return CreatePair(ctx, "other0", "other1", 0) }) // veth, wrong prefix

	var got []string
	vm.must(t, "List", func() (err error) { got, err = List(ctx, HostPrefix); return err })
	if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("List(%q) = %v, want %v", HostPrefix, got, slices.Sorted(slices.Values(want)))
	}
	vm.must(t, "List", func() (err error) { got, err = List(ctx, PeerPrefix); return err })
	if len(got) != 3 {
		t.Errorf("List(%q) = %v, want the 3 parked peers", PeerPrefix, got)
	}

	for name, wantExists := range map[string]bool{s.HostName: true, want[0]: true, "odvnothere": false} {
		var ok bool
		vm.must(t, "Exists", func() (err error) { ok, err = Exists(ctx, name); return err })
		if ok != wantExists {
			t.Errorf("Exists(%s) = %v, want %v", name, ok, wantExists)
		}
	}
	err := vm.in(func() error { _, err := Exists(ctx, "odvdummy"); return err })
	if !errors.Is(err, ErrNameInUse) {
		t.Errorf("Exists of a dummy: %v, want ErrNameInUse", err)
	}
}

func TestConcurrentCreate(t *testing.T) {
	const n = 30
	vm := newNS(t)
	ctrs := make([]*testNS, n)
	for i := range ctrs {
		ctrs[i] = newNS(t)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = create(vm, testSpec(t, 100+i, ctrs[i].Path())) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Create #%d: %v", i, err)
		}
	}
	var hosts []string
	vm.must(t, "List", func() (err error) { hosts, err = List(context.Background(), HostPrefix); return err })
	if len(hosts) != n {
		t.Errorf("List found %d host ends, want %d", len(hosts), n)
	}
	if got := vm.linkNames(t); len(got) != n {
		t.Errorf("vm has %d links, want %d host ends only: %v", len(got), n, got)
	}
	for i, c := range ctrs {
		want := fmt.Sprintf("10.%d.0.2/24", 100+i)
		if got := globalAddrs(c.addrsOf(t, "eth0")); len(got) != 2 || got[0] != want {
			t.Errorf("container %d addresses %v, want %s and a v6", i, got, want)
		}
	}
}

// BenchmarkCreateDelete is the local floor of an attach plus detach. It also
// reports both halves: deleting a veth waits for RCU grace periods in the
// kernel and dominates.
func BenchmarkCreateDelete(b *testing.B) {
	vm, ctr := newNS(b), newNS(b)
	ctx := context.Background()
	s := testSpec(b, 1, ctr.Path())
	var inCreate, inDelete time.Duration
	err := vm.in(func() error {
		for b.Loop() {
			t0 := time.Now()
			if err := Create(ctx, s); err != nil {
				return err
			}
			t1 := time.Now()
			if err := Delete(ctx, s.HostName); err != nil {
				return err
			}
			inCreate += t1.Sub(t0)
			inDelete += time.Since(t1)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(inCreate.Nanoseconds())/float64(b.N), "create-ns/op")
	b.ReportMetric(float64(inDelete.Nanoseconds())/float64(b.N), "delete-ns/op")
}
