//go:build integration

package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// vethNS makes a netns with a veth pair probe <-> server in it, both up.
func vethNS(t *testing.T) ns.NetNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("integration tests need root (network namespaces, netlink)")
	}
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		n.Close()
		if err := testutils.UnmountNS(n); err != nil {
			t.Errorf("remove netns: %v", err)
		}
	})
	err = n.Do(func(ns.NetNS) error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "probe"}, PeerName: "server"}); err != nil {
			return err
		}
		for _, name := range []string{"probe", "server"} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("veth pair: %v", err)
	}
	return n
}

// serve answers each DISCOVER read on the server end with an offer of addr, its xid
// changed by xidDelta (non-zero: an answer that is not the probe's), until ctx ends.
func serve(t *testing.T, ctx context.Context, n ns.NetNS, addr netip.Addr, xidDelta uint32) <-chan int {
	t.Helper()
	answered := make(chan int, 1)
	var fd int
	err := n.Do(func(ns.NetNS) error {
		l, err := net.InterfaceByName("server")
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: l.Index})
	})
	if err != nil {
		t.Fatalf("server socket: %v", err)
	}
	tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer unix.Close(fd)
		count := 0
		defer func() { answered <- count }()
		buf := make([]byte, 2048)
		for ctx.Err() == nil {
			k, err := unix.Read(fd, buf)
			if err != nil || k < 42+240 || binary.BigEndian.Uint16(buf[36:38]) != 67 {
				continue
			}
			f := offer(buf[:k], addr)
			binary.BigEndian.PutUint32(f[42+4:42+8], binary.BigEndian.Uint32(f[42+4:42+8])+xidDelta)
			if _, err := unix.Write(fd, f); err == nil {
				count++
			}
		}
	}()
	return answered
}

// TestDHCPOverVeth: the probe takes the offer of its own DISCOVER, sent again until it
// comes; answers that are not its own (another xid) are no answer, and its timeout says
// how many requests went out and how many other frames came back, so that a probe that
// timed out tells an OVN that said nothing from answers it did not take.
func TestDHCPOverVeth(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x5e, 0, 0, 0, 7}
	want := netip.MustParseAddr("10.0.0.7")

	t.Run("its own offer", func(t *testing.T) {
		n := vethNS(t)
		sctx, stop := context.WithCancel(context.Background())
		answered := serve(t, sctx, n, want, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := DHCP(ctx, n.Path(), "probe", mac, want)
		stop()
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		if c := <-answered; c < 1 {
			t.Fatalf("the server answered %d DISCOVERs", c)
		}
	})

	t.Run("offers that are not its own", func(t *testing.T) {
		n := vethNS(t)
		sctx, stop := context.WithCancel(context.Background())
		answered := serve(t, sctx, n, want, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := DHCP(ctx, n.Path(), "probe", mac, want)
		stop()
		c := <-answered
		if !errors.Is(err, ErrNoAnswer) {
			t.Fatalf("probe: want ErrNoAnswer, got %v", err)
		}
		if c < 2 || !strings.Contains(err.Error(), " requests in ") || strings.Contains(err.Error(), "(0 other frames read)") {
			t.Fatalf("the server answered %d DISCOVERs with another xid; the probe says: %v", c, err)
		}
		t.Logf("%v", err)
	})
}
