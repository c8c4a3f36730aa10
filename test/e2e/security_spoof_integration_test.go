//go:build integration

package e2e

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// assertPortSecurity checks that OVN's Northbound row of the container's port locks it
// to Neutron's MAC and IP: port_security = "MAC IP".
func assertPortSecurity(t *testing.T, s *testutil.Stack, b *box) {
	t.Helper()
	got := strings.Fields(s.NBCtl(t, "--bare", "--columns=port_security", "find", "logical_switch_port", "name="+b.eth0.Port))
	want := []string{b.eth0.MAC, ipOf(b.eth0)}
	if len(got) != 2 || !strings.EqualFold(got[0], want[0]) || got[1] != want[1] {
		t.Fatalf("port_security of %s's port %s is %q, want %q", b, b.eth0.Port, got, want)
	}
}

// TestSecurityAntiSpoofing: every container port carries OVN port security, and a
// container that changes its IP or MAC, or sends with a forged source (busybox tools or
// raw frames), reaches no peer, in its own VM or in another: the peers' own interfaces
// and kernels see nothing of it. The same attacker with its own identity does reach
// them, before and after.
//
// Each drop is port security's: the peers are also in a group of the test's that takes
// ICMP from anywhere (the default group alone takes only its members' addresses, and
// would drop a free address's echo whatever the sender's port did), and every attack is
// first made by a container without port security, whose forged frames must reach every
// peer. Only then is the same attack from the port-security container expected to
// reach none.
func TestSecurityAntiSpoofing(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	anyICMP := icmpGroup(t, s.Network(t, "tenant-a"), uniq("spoof-icmp"))
	ls := tenantNetwork(t, vm1, uniq("spoof"))
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })

	// The attacker may change its own interface (NET_ADMIN); the open one is the same
	// without port security (and so in no security group), the control of every attack;
	// the neighbour is the container whose identity they borrow; the peers, in the other
	// VM and in their own, are the targets (NET_ADMIN to flush their ARP caches).
	on := []string{"--network", ls}
	admin := []string{"--cap-add", "NET_ADMIN"}
	peerOn := slices.Concat(on, []string{"--security-group", "default", "--security-group", anyICMP})
	bs := runBoxes(t,
		boxSpec{vm: vm1, name: "spoofer", global: on, opts: admin},
		boxSpec{vm: vm1, name: "spoofer-open", global: slices.Concat(on, []string{"--no-port-security"}), opts: admin},
		boxSpec{vm: vm1, name: "neighbour", global: on},
		boxSpec{vm: vm2, name: "peer", global: peerOn, opts: admin},
		boxSpec{vm: vm1, name: "local-peer", global: peerOn, opts: admin})
	att, open, nbr, peers := bs[0], bs[1], bs[2], bs[3:]
	for _, b := range append([]*box{att, nbr}, peers...) {
		assertPortSecurity(t, s, b)
	}
	if got := strings.TrimSpace(s.NBCtl(t, "--bare", "--columns=port_security", "find", "logical_switch_port", "name="+open.eth0.Port)); got != "" {
		t.Fatalf("port_security of %s's port %s is %q, want none", open, open.eth0.Port, got)
	}

	// Control: each attacker reaches each peer with busybox's ping and with a raw frame
	// under its own identity, and the peer's capture and ICMP counter see both.
	gw := gatewayOf(t, att)
	txs := map[*box]*rawSock{att: att.sender(t), open: open.sender(t)}
	for _, a := range []*box{att, open} {
		for _, p := range peers {
			a.mustPing(t, p.ip().String())
			rx := p.listen(t)
			ok := marker(t, "control")
			before := p.snmp(t, "Icmp", "InEchos")
			txs[a].send(t, ether(p.mac(), a.mac(), 0x0800, icmpEcho(a.ip(), p.ip(), 1, ok)))
			if !rx.waitSeen(t, withMarker(ok)) {
				t.Fatalf("control: %s did not receive a raw echo request from %s", p, a)
			}
			fence(t, a.queryFence(txs[a]), rx)
			if after := p.snmp(t, "Icmp", "InEchos"); after <= before {
				t.Fatalf("control: %s's kernel counted no echo request (InEchos %d -> %d)", p, before, after)
			}
		}
	}

	// A free address of the subnet, and a MAC no port has.
	subnet := netip.MustParsePrefix(att.eth0.IPs[0]).Masked()
	free := freeAddr(t, subnet, append([]*box{att, open, nbr}, peers...)...)
	fakeMAC := strangerMAC(0x51)
	plen := "/" + strings.SplitN(att.eth0.IPs[0], "/", 2)[1]
	// pingPeers pings every peer with busybox from a (all of them: each peer's capture
	// is looked at); it reports the first answer.
	pingPeers := func(a *box, extra ...string) (reached bool, detail string) {
		for _, p := range peers {
			if ok, out := a.pings(p.ip().String(), extra...); ok && !reached {
				reached, detail = true, out
			}
		}
		return reached, detail
	}
	// raw sends from a, to every peer, the frames that f makes for it.
	raw := func(t *testing.T, a *box, f func(p *box, m []byte) [][]byte) {
		m := marker(t, "spoof")
		for _, p := range peers {
			txs[a].send(t, f(p, m)...)
		}
	}

	for _, tc := range []struct {
		name string
		// forged: what the attack's packets carry as their source.
		forgedMAC net.HardwareAddr
		forgedIP  netip.Addr
		attack    func(t *testing.T, a *box) (reached bool, detail string)
		restore   func(t *testing.T, a *box)
	}{
		{
			name: "another IP added, ping -I it", forgedIP: free,
			attack: func(t *testing.T, a *box) (bool, string) {
				a.mustExec(t, "ip", "addr", "add", free.String()+plen, "dev", "eth0")
				return pingPeers(a, "-I", free.String())
			},
			restore: func(t *testing.T, a *box) { a.mustExec(t, "ip", "addr", "del", free.String()+plen, "dev", "eth0") },
		},
		{
			name: "IP changed", forgedIP: free,
			attack: func(t *testing.T, a *box) (bool, string) {
				a.mustExec(t, "ip", "addr", "del", a.eth0.IPs[0], "dev", "eth0")
				a.mustExec(t, "ip", "addr", "add", free.String()+plen, "dev", "eth0")
				a.mustExec(t, "ip", "neigh", "flush", "dev", "eth0")
				return pingPeers(a)
			},
			restore: func(t *testing.T, a *box) {
				a.mustExec(t, "ip", "addr", "del", free.String()+plen, "dev", "eth0")
				a.mustExec(t, "ip", "addr", "add", a.eth0.IPs[0], "dev", "eth0")
			},
		},
		{
			name: "IP changed to the neighbour's", forgedIP: nbr.ip(),
			attack: func(t *testing.T, a *box) (bool, string) {
				a.mustExec(t, "ip", "addr", "del", a.eth0.IPs[0], "dev", "eth0")
				a.mustExec(t, "ip", "addr", "add", nbr.eth0.IPs[0], "dev", "eth0")
				a.mustExec(t, "ip", "neigh", "flush", "dev", "eth0")
				return pingPeers(a)
			},
			restore: func(t *testing.T, a *box) {
				a.mustExec(t, "ip", "addr", "del", nbr.eth0.IPs[0], "dev", "eth0")
				a.mustExec(t, "ip", "addr", "add", a.eth0.IPs[0], "dev", "eth0")
			},
		},
		{
			name: "MAC changed", forgedMAC: fakeMAC,
			attack: func(t *testing.T, a *box) (bool, string) {
				a.mustExec(t, "ip", "link", "set", "eth0", "address", fakeMAC.String())
				a.mustExec(t, "ip", "neigh", "flush", "dev", "eth0")
				return pingPeers(a)
			},
			restore: func(t *testing.T, a *box) { a.mustExec(t, "ip", "link", "set", "eth0", "address", a.eth0.MAC) },
		},
		{
			name: "MAC changed to the neighbour's", forgedMAC: nbr.mac(),
			attack: func(t *testing.T, a *box) (bool, string) {
				a.mustExec(t, "ip", "link", "set", "eth0", "address", nbr.eth0.MAC)
				return pingPeers(a)
			},
			restore: func(t *testing.T, a *box) { a.mustExec(t, "ip", "link", "set", "eth0", "address", a.eth0.MAC) },
		},
		{
			name: "raw frames with a forged source IP", forgedIP: free,
			attack: func(t *testing.T, a *box) (bool, string) {
				raw(t, a, func(p *box, m []byte) [][]byte {
					return [][]byte{ether(p.mac(), a.mac(), 0x0800, icmpEcho(free, p.ip(), 2, m)),
						ether(broadcast, a.mac(), 0x0806, arpPacket(1, a.mac(), free, nil, p.ip()))}
				})
				return false, ""
			},
		},
		{
			name: "raw frames with a forged source MAC", forgedMAC: fakeMAC,
			attack: func(t *testing.T, a *box) (bool, string) {
				raw(t, a, func(p *box, m []byte) [][]byte {
					return [][]byte{ether(p.mac(), fakeMAC, 0x0800, icmpEcho(a.ip(), p.ip(), 3, m)),
						ether(broadcast, fakeMAC, 0x0806, arpPacket(1, fakeMAC, a.ip(), nil, p.ip()))}
				})
				return false, ""
			},
		},
		{
			name: "raw frames as the neighbour", forgedMAC: nbr.mac(), forgedIP: nbr.ip(),
			attack: func(t *testing.T, a *box) (bool, string) {
				raw(t, a, func(p *box, m []byte) [][]byte {
					return [][]byte{ether(p.mac(), nbr.mac(), 0x0800, icmpEcho(nbr.ip(), p.ip(), 4, m)),
						ether(broadcast, nbr.mac(), 0x0806, arpPacket(1, nbr.mac(), nbr.ip(), nil, p.ip()))}
				})
				return false, ""
			},
		},
		{
			// ARP poisoning: "the neighbour's IP is at my MAC", to each peer and to all.
			name: "ARP claiming the neighbour's IP", forgedIP: nbr.ip(),
			attack: func(t *testing.T, a *box) (bool, string) {
				raw(t, a, func(p *box, _ []byte) [][]byte {
					return [][]byte{ether(p.mac(), a.mac(), 0x0806, arpPacket(2, a.mac(), nbr.ip(), p.mac(), p.ip())),
						ether(broadcast, a.mac(), 0x0806, arpPacket(1, a.mac(), nbr.ip(), nil, nbr.ip())),
						ether(broadcast, a.mac(), 0x0806, arpPacket(2, a.mac(), nbr.ip(), broadcast, nbr.ip()))}
				})
				return false, ""
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forged := fromIdentity(tc.forgedMAC, tc.forgedIP)
			// mount makes the attack from a, with captures and counters on every peer
			// around it, and leaves a itself again, its peers' ARP caches as they were.
			mount := func(a *box) (caps []*capture, echos []int, reached bool, detail string) {
				for _, p := range peers {
					caps = append(caps, p.listen(t))
					echos = append(echos, p.snmp(t, "Icmp", "InEchos"))
				}
				reached, detail = tc.attack(t, a)
				if tc.restore != nil {
					tc.restore(t, a)
				}
				return caps, echos, reached, detail
			}
			itself := func(a *box) {
				a.mustExec(t, "ip", "route", "replace", "default", "via", gw, "dev", "eth0")
				for _, p := range peers {
					a.mustPing(t, p.ip().String())
				}
			}

			// Control: without port security the forged frames reach every peer, so
			// nothing else on the way (the peers' groups, OVN's pipeline) drops them.
			caps, echos, _, _ := mount(open)
			for i, p := range peers {
				if !caps[i].waitSeen(t, forged) {
					t.Fatalf("control: %s received nothing with the forged source (MAC %v, IP %v) from %s, which has no port security: a drop below would not be port security's",
						p, tc.forgedMAC, tc.forgedIP, open)
				}
			}
			// The rest of the attack arrives before the peers' ARP caches are flushed.
			fence(t, open.queryFence(txs[open]), caps...)
			for i, p := range peers {
				t.Logf("control: %s received %d frame(s) with the forged source from %s; its kernel counted %d echo request(s)",
					p, len(caps[i].seen(forged)), open, p.snmp(t, "Icmp", "InEchos")-echos[i])
				p.mustExec(t, "ip", "neigh", "flush", "dev", "eth0")
			}
			itself(open)

			caps, echos, reached, detail := mount(att)
			if reached {
				t.Errorf("the spoofing container got an answer:\n%s", detail)
			}
			// The attacker, itself again, fences its attack: its own frames reach the
			// peers after everything it sent before.
			fence(t, att.queryFence(txs[att]), caps...)
			for i, p := range peers {
				got := caps[i].stop()
				if leaked := caps[i].seen(forged); len(leaked) > 0 {
					t.Errorf("%s received %d of %d frames with the forged source (MAC %v, IP %v), first: %s",
						p, len(leaked), len(got), tc.forgedMAC, tc.forgedIP, leaked[0])
				}
				if after := p.snmp(t, "Icmp", "InEchos"); after != echos[i] {
					t.Errorf("%s's kernel counted %d echo requests during the attack", p, after-echos[i])
				}
				if neigh := p.mustExec(t, "ip", "neigh", "show", nbr.ip().String()); strings.Contains(neigh, att.eth0.MAC) {
					t.Errorf("%s's ARP cache maps the neighbour's %s to the attacker's MAC: %s", p, nbr.ip(), neigh)
				}
			}
			// The attacker, itself again, still reaches the peers: its port was filtered,
			// not broken.
			itself(att)
		})
	}
}

// freeAddr returns an address of the subnet that none of the boxes has, away from the
// start (gateway, DHCP) and end of the range.
func freeAddr(t *testing.T, subnet netip.Prefix, boxes ...*box) netip.Addr {
	t.Helper()
	a := subnet.Addr()
	for i := 0; i < 200; i++ {
		a = a.Next()
	}
	for ; subnet.Contains(a); a = a.Next() {
		taken := false
		for _, b := range boxes {
			taken = taken || b.ip() == a
		}
		if !taken {
			return a
		}
	}
	t.Fatalf("no free address in %s", subnet)
	return netip.Addr{}
}

// gatewayOf reads the container's default gateway from its routes: Neutron's subnet
// gateway, which ovn-docker gives eth0 as its default route.
func gatewayOf(t *testing.T, b *box) string {
	t.Helper()
	out := b.mustExec(t, "ip", "route", "show", "default")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == "default" && f[1] == "via" && f[4] == "eth0" {
			return f[2]
		}
	}
	t.Fatalf("%s has no default route via eth0:\n%s", b, out)
	return ""
}
