//go:build integration

package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// v6Net is a network of TestIPv6DualStack: its create flags and the families it carries.
type v6Net struct {
	label  string
	args   []string
	v4, v6 bool
	proven bool // OVN answers DHCPv6 there: the IPv6 path is proven before the command
}

// TestIPv6DualStack: on a dual-stack network, IPv6-only networks (SLAAC, DHCPv6
// stateless) and a network with DHCP off and static IPv6, containers in two VMs get
// Neutron's addresses of each family, reach each other over each from the start, and
// move 10 MB over TCP on IPv6; everything goes with rm.
func TestIPv6DualStack(t *testing.T) {
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]

	nets := []v6Net{
		{"dual", []string{"--subnet", "10.131.0.0/24", "--ipv6-subnet", "fd00:131::/64"}, true, true, true},
		{"slaac", []string{"--ipv4=false", "--ipv6-subnet", "fd00:132::/64", "--ipv6-address-mode", "slaac", "--ipv6-ra-mode", "slaac"}, false, true, false},
		{"stateless", []string{"--ipv4=false", "--ipv6-subnet", "fd00:133::/64", "--ipv6-address-mode", "dhcpv6-stateless", "--ipv6-ra-mode", "dhcpv6-stateless"}, false, true, true},
		{"nodhcp", []string{"--subnet", "10.134.0.0/24", "--ipv6-subnet", "fd00:134::/64", "--ipv6-address-mode", "none", "--no-dhcp"}, true, true, false},
	}
	// Networks are made one at a time, so a failure names the first kind that fails;
	// at the end the containers go first, then the networks.
	var made []string
	t.Cleanup(func() {
		cleanVM(t, vm1)
		cleanVM(t, vm2)
		for _, name := range made {
			if r := ovnDocker(t, vm1, nil, "delete", "network", name); r.code != 0 {
				t.Errorf("delete network %s: %s", name, r)
			}
		}
	})
	for _, n := range nets {
		name := uniq("v6" + n.label)
		mustOVNDocker(t, vm1, append([]string{"create", "network", name}, n.args...)...)
		made = append(made, name)
		a := runBox(t, vm1, "a"+n.label, []string{"--network", name}, nil)
		b := runBox(t, vm2, "b"+n.label, []string{"--network", name}, nil)
		for _, x := range []*box{a, b} {
			checkFamilies(t, x, n)
		}
		for _, fam := range []struct {
			on   bool
			is6  bool
			ping []string
		}{{n.v4, false, nil}, {n.v6, true, []string{"-6"}}} {
			if !fam.on {
				continue
			}
			for _, p := range [][2]*box{{a, b}, {b, a}} {
				dst := addrOf(t, p[1], fam.is6)
				if ok, out := p[0].pings(dst, fam.ping...); !ok {
					t.Fatalf("%s: %s cannot ping %s at %s:\n%s", n.label, p[0], p[1], dst, out)
				}
			}
		}
		if n.v6 {
			transfer(t, a, b, addrOf(t, b, true))
		}
		if n.proven {
			// The container's very first action reaches the peer over IPv6.
			r := ovnDocker(t, vm1, nil, "--network", name, "run", "--rm", "busybox:local", "ping", "-6", "-c", "1", "-W", "1", addrOf(t, b, true))
			if r.code != 0 || !strings.Contains(r.stdout, "1 packets received") {
				t.Fatalf("%s: first-action ping -6 failed: %s", n.label, r)
			}
		}
	}

	for _, n := range nets {
		mustOVNDocker(t, vm1, "rm", "-f", "a"+n.label)
		mustOVNDocker(t, vm2, "rm", "-f", "b"+n.label)
	}
	assertClean(t, s, vm1)
	assertClean(t, s, vm2)
}

// checkFamilies: the container's eth0 holds exactly the addresses ps reports, one per
// family the network has, with a default route for each.
func checkFamilies(t *testing.T, b *box, n v6Net) {
	t.Helper()
	var v4, v6 int
	for _, ip := range b.eth0.IPs {
		p := netip.MustParsePrefix(ip)
		if p.Addr().Is4() {
			v4++
		} else {
			v6++
		}
		addrs := b.mustExec(t, "ip", "addr", "show", "eth0")
		if !strings.Contains(addrs, ip) {
			t.Fatalf("%s: eth0 lacks %s:\n%s", n.label, ip, addrs)
		}
	}
	if (v4 == 1) != n.v4 || (v6 == 1) != n.v6 {
		t.Fatalf("%s: %s got addresses %v, want v4=%v v6=%v", n.label, b, b.eth0.IPs, n.v4, n.v6)
	}
	if n.v4 {
		if r := b.mustExec(t, "ip", "-4", "route"); !strings.Contains(r, "default via") {
			t.Fatalf("%s: %s has no IPv4 default route:\n%s", n.label, b, r)
		}
	}
	if n.v6 {
		if r := b.mustExec(t, "ip", "-6", "route"); !strings.Contains(r, "default via") {
			t.Fatalf("%s: %s has no IPv6 default route:\n%s", n.label, b, r)
		}
	}
}

// addrOf is the container's address of one family.
func addrOf(t *testing.T, b *box, v6 bool) string {
	t.Helper()
	for _, ip := range b.eth0.IPs {
		p := netip.MustParsePrefix(ip)
		if p.Addr().Is6() == v6 {
			return p.Addr().String()
		}
	}
	t.Fatalf("%s has no address of that family (v6=%v): %v", b, v6, b.eth0.IPs)
	return ""
}

// transfer sends 10 MB over TCP from a to b's address dst and checks b got every byte.
// The listener runs in the foreground of its own exec, which ends when the sender closes;
// the sender starts once b's kernel shows the socket listening.
func transfer(t *testing.T, a, b *box, dst string) {
	t.Helper()
	const size, port = 10 << 20, 5601
	type res struct {
		out string
		err error
	}
	got := make(chan res, 1)
	go func() {
		// busybox nc closes its sending half at EOF on its stdin, and the sender quits
		// when it sees that: the listener's stdin is a FIFO held open, never at EOF.
		out, err := b.exec("sh", "-c", fmt.Sprintf("mkfifo /tmp/in && exec 3<>/tmp/in && nc -l -p %d <&3 | wc -c", port))
		got <- res{out, err}
	}()
	// 0A is LISTEN; the port is hex in /proc/net/tcp6.
	b.mustExec(t, "sh", "-c", fmt.Sprintf("until grep -q ':%04X 0\\{32\\}:0000 0A' /proc/net/tcp6; do :; done", port))
	a.mustExec(t, "sh", "-c", fmt.Sprintf("dd if=/dev/zero bs=1048576 count=10 2>/dev/null | nc %s %d", dst, port))
	r := <-got
	if r.err != nil || strings.TrimSpace(r.out) != fmt.Sprint(size) {
		t.Fatalf("TCP over IPv6 %s -> %s (%s): received %q bytes (%v), want %d", a, b, dst, r.out, r.err, size)
	}
	t.Logf("TCP over IPv6: %d bytes %s -> %s [%s]", size, a.name, b.name, dst)
}
