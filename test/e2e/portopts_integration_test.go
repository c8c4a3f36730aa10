//go:build integration

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/qos/policies"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/qos/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	sgrules "github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// qosLimitKbps is the bandwidth limit of TestPortOptions' QoS policy: 8 Mbit/s.
const qosLimitKbps = 8000

// TestPortOptions: run's port options, with real packets between two VMs.
//   - --allowed-address: a container answers on an extra address it adds (VRRP style);
//     a container without the pair, adding the same kind of address, is not reached
//     (port security drops its ARP answers).
//   - --no-port-security: a container sends from a source address that is not its own
//     and reaches the peer; the same spoof from a container with port security is
//     dropped. On a network the tenant does not own Neutron refuses it: one line, and
//     nothing is left.
//   - --hostname: the port's dns_name.
//   - --qos-policy: a shared bandwidth-limit policy (made by admin) limits the
//     container's TCP throughput to within 20% of the limit, timed by the receiver;
//     a container without it goes faster.
//
// Everything goes with rm.
func TestPortOptions(t *testing.T) {
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]

	admin := s.Network(t, "admin")
	policy := qosPolicy(t, admin, uniq("od-qos"), qosLimitKbps)
	shared := sharedNetwork(t, admin, uniq("od-shared"), "10.148.0.0/24")
	tenant := s.Network(t, "tenant-a")
	// The peer takes echo requests from any source: what reaches it or not is then the
	// sender's port security's doing, not the peer's security group. It stays in the
	// default group too, whose members (the other containers) take its packets.
	anyICMP := icmpGroup(t, tenant, uniq("od-icmp"))

	ls := tenantNetwork(t, vm1, uniq("popts"), "--subnet", "10.147.0.0/24")
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })
	vip, spoof := "10.147.0.250", "10.147.0.251"

	on := []string{"--network", ls}
	admin2 := []string{"--cap-add", "NET_ADMIN"}
	bs := runBoxes(t,
		boxSpec{vm: vm1, name: "vip", global: append(slices.Clone(on), "--allowed-address", vip), opts: append(slices.Clone(admin2), "--hostname", "dns-a1")},
		boxSpec{vm: vm1, name: "plain", global: on, opts: admin2},
		boxSpec{vm: vm1, name: "open", global: append(slices.Clone(on), "--no-port-security"), opts: admin2},
		boxSpec{vm: vm1, name: "slow", global: append(slices.Clone(on), "--qos-policy", policy)},
		boxSpec{vm: vm2, name: "peer", global: append(slices.Clone(on), "--security-group", "default", "--security-group", anyICMP), opts: admin2})
	vipBox, plain, open, slow, peer := bs[0], bs[1], bs[2], bs[3], bs[4]
	for _, b := range bs {
		if a := b.ip().String(); a == vip || a == spoof {
			t.Fatalf("Neutron gave %s the test's extra address %s: run again", b, a)
		}
	}

	// Allowed address pair: the peer reaches the extra address of the container that has
	// the pair; the same traffic to a container without it is dropped.
	if nb := s.NBCtl(t, "--bare", "--columns=port_security", "find", "logical_switch_port", "name="+vipBox.eth0.Port); !strings.Contains(nb, vip) {
		t.Fatalf("OVN port_security of %s is %q: no %s", vipBox, nb, vip)
	}
	vipBox.mustExec(t, "ip", "addr", "add", vip+"/24", "dev", "eth0")
	if ok, out := peer.pings(vip); !ok {
		t.Fatalf("%s cannot ping %s's allowed address %s:\n%s", peer, vipBox, vip, out)
	}
	vipBox.mustExec(t, "ip", "addr", "del", vip+"/24", "dev", "eth0")
	peer.exec("ip", "neigh", "flush", "all")
	plain.mustExec(t, "ip", "addr", "add", vip+"/24", "dev", "eth0")
	before := plain.snmp(t, "Icmp", "InEchos")
	if ok, out := peer.pings(vip); ok {
		t.Fatalf("%s reached %s on %s, an address its port has no pair for:\n%s", peer, plain, vip, out)
	}
	plain.mustExec(t, "ip", "addr", "del", vip+"/24", "dev", "eth0")
	t.Logf("allowed address pair: %s answers on %s; without the pair %s does not (its kernel counted %d echo requests before, %d after)",
		vipBox.name, vip, plain.name, before, plain.snmp(t, "Icmp", "InEchos"))

	// Port security off: a spoofed source reaches the peer; with port security it does not.
	p := portAttrs(t, tenant, open.eth0.Port)
	if p.PortSecurity == nil || *p.PortSecurity || len(p.SecurityGroups) != 0 {
		t.Fatalf("port of %s: port_security_enabled %v, security groups %v; want false and none", open, p.PortSecurity, p.SecurityGroups)
	}
	peer.mustPing(t, open.ip().String())
	plain.mustExec(t, "ip", "addr", "add", spoof+"/24", "dev", "eth0")
	if ok, out := plain.pings(peer.ip().String(), "-I", spoof); ok {
		t.Fatalf("%s with port security reached %s from %s:\n%s", plain, peer, spoof, out)
	}
	plain.mustExec(t, "ip", "addr", "del", spoof+"/24", "dev", "eth0")
	peer.exec("ip", "neigh", "flush", "all")
	open.mustExec(t, "ip", "addr", "add", spoof+"/24", "dev", "eth0")
	if ok, out := open.pings(peer.ip().String(), "-I", spoof); !ok {
		t.Fatalf("%s without port security cannot reach %s from %s:\n%s", open, peer, spoof, out)
	}
	open.mustExec(t, "ip", "addr", "del", spoof+"/24", "dev", "eth0")
	t.Logf("port security off: %s reaches %s from %s; %s with port security does not", open.name, peer.name, spoof, plain.name)

	// DNS name from the hostname.
	if p := portAttrs(t, tenant, vipBox.eth0.Port); p.DNSName != "dns-a1" {
		t.Fatalf("port of %s: dns_name %q, want dns-a1 (its hostname)", vipBox, p.DNSName)
	}

	// QoS: the limit holds the throughput; without it the same transfer is faster.
	if p := portAttrs(t, tenant, slow.eth0.Port); p.QoSPolicyID == "" {
		t.Fatalf("port of %s has no qos_policy_id", slow)
	}
	if nb := s.NBCtl(t, "--bare", "--columns=match,bandwidth", "list", "qos"); !strings.Contains(nb, slow.eth0.Port) {
		t.Fatalf("OVN has no QoS row for %s's port %s:\n%s", slow, slow.eth0.Port, nb)
	} else {
		t.Logf("OVN QoS rows:\n%s", nb)
	}
	const size = 6 << 20
	limited := throughput(t, slow, peer, size, 5611)
	free := throughput(t, plain, peer, size, 5612)
	limit := float64(qosLimitKbps) * 1000
	t.Logf("QoS: %s (limit %d kbit/s) sent at %.2f Mbit/s (%.0f%% of the limit); %s without QoS at %.2f Mbit/s",
		slow.name, qosLimitKbps, limited/1e6, 100*limited/limit, plain.name, free/1e6)
	if limited < 0.8*limit || limited > 1.2*limit {
		t.Fatalf("%s with a %d kbit/s limit sent at %.2f Mbit/s: not within 20%% of the limit", slow, qosLimitKbps, limited/1e6)
	}
	if free < 1.5*limit {
		t.Fatalf("control: %s without QoS sent at %.2f Mbit/s only: the limit cannot be told from the path's own speed", plain, free/1e6)
	}

	// Port security off where the tenant does not own the network: Neutron's refusal in
	// one line, and nothing made.
	r := ovnDocker(t, vm1, nil, "--network", shared, "--no-port-security", "run", "-d", "--name", "refused", "busybox:local", "sleep", "60")
	if r.code == 0 || !strings.Contains(r.stderr, "port security") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("--no-port-security on a shared network of admin's: want one line of refusal, got %s", r)
	}
	t.Logf("refused: %s", strings.TrimSpace(r.stderr))

	for _, b := range bs {
		mustOVNDocker(t, b.vm, "rm", "-f", b.name)
	}
	assertClean(t, s, vm1)
	assertClean(t, s, vm2)
}

// portFields are the port's attributes of the extensions the test checks.
type portFields struct {
	DNSName        string   `json:"dns_name"`
	PortSecurity   *bool    `json:"port_security_enabled"`
	SecurityGroups []string `json:"security_groups"`
	QoSPolicyID    string   `json:"qos_policy_id"`
}

func portAttrs(t *testing.T, nc *gophercloud.ServiceClient, id string) portFields {
	t.Helper()
	var p portFields
	if err := ports.Get(context.Background(), nc, id).ExtractInto(&p); err != nil {
		t.Fatalf("get port %s: %v", id, err)
	}
	return p
}

// qosPolicy makes, as admin, a shared QoS policy with an egress bandwidth limit, deleted
// at the end of the test. Its burst is 80% of a second's worth, what Neutron's OVS agent
// takes when none is given: a policer with a small bucket holds TCP far below its rate.
func qosPolicy(t *testing.T, admin *gophercloud.ServiceClient, name string, kbps int) string {
	t.Helper()
	ctx := context.Background()
	pol, err := policies.Create(ctx, admin, policies.CreateOpts{Name: name, Shared: true}).Extract()
	if err != nil {
		t.Fatalf("create qos policy: %v", err)
	}
	t.Cleanup(func() {
		if err := policies.Delete(context.Background(), admin, pol.ID).ExtractErr(); err != nil {
			t.Errorf("delete qos policy %s: %v", name, err)
		}
	})
	_, err = rules.CreateBandwidthLimitRule(ctx, admin, pol.ID, rules.CreateBandwidthLimitRuleOpts{
		MaxKBps: kbps, MaxBurstKBps: kbps * 8 / 10, Direction: "egress"}).ExtractBandwidthLimitRule()
	if err != nil {
		t.Fatalf("bandwidth limit rule: %v", err)
	}
	return name
}

// icmpGroup makes a security group of the tenant's that lets ICMP in from anywhere,
// deleted at the end of the test.
func icmpGroup(t *testing.T, nc *gophercloud.ServiceClient, name string) string {
	t.Helper()
	ctx := context.Background()
	g, err := groups.Create(ctx, nc, groups.CreateOpts{Name: name}).Extract()
	if err != nil {
		t.Fatalf("create security group: %v", err)
	}
	t.Cleanup(func() {
		if err := groups.Delete(context.Background(), nc, g.ID).ExtractErr(); err != nil {
			t.Errorf("delete security group %s: %v", name, err)
		}
	})
	_, err = sgrules.Create(ctx, nc, sgrules.CreateOpts{Direction: sgrules.DirIngress, EtherType: sgrules.EtherType4,
		SecGroupID: g.ID, Protocol: sgrules.ProtocolICMP, RemoteIPPrefix: "0.0.0.0/0"}).Extract()
	if err != nil {
		t.Fatalf("security group rule: %v", err)
	}
	return name
}

// sharedNetwork makes, as admin, a shared network with a subnet, deleted at the end of
// the test: a network the tenant may use but does not own.
func sharedNetwork(t *testing.T, admin *gophercloud.ServiceClient, name, cidr string) string {
	t.Helper()
	ctx := context.Background()
	yes := true
	n, err := networks.Create(ctx, admin, networks.CreateOpts{Name: name, Shared: &yes}).Extract()
	if err != nil {
		t.Fatalf("create shared network: %v", err)
	}
	t.Cleanup(func() {
		if err := networks.Delete(context.Background(), admin, n.ID).ExtractErr(); err != nil {
			t.Errorf("delete network %s: %v", name, err)
		}
	})
	if _, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: n.ID, CIDR: cidr, IPVersion: gophercloud.IPv4}).Extract(); err != nil {
		t.Fatalf("create subnet of %s: %v", name, err)
	}
	return n.ID
}

// realTime reads busybox time's "real" line: "real\t0m 6.25s".
var realTime = regexp.MustCompile(`real\s+(\d+)m\s*([0-9.]+)s`)

// throughput sends size bytes over TCP from a to b and returns the rate in bit/s as b
// measured it: from its first byte received to the end, by its own clock (busybox time
// around the count of the rest).
func throughput(t *testing.T, a, b *box, size, port int) float64 {
	t.Helper()
	type res struct {
		out string
		err error
	}
	got := make(chan res, 1)
	go func() {
		// The listener's stdin is a FIFO held open: busybox nc would shut its sending
		// half at EOF, and the sender would then stop.
		out, err := b.exec("sh", "-c", fmt.Sprintf("rm -f /tmp/in%d; mkfifo /tmp/in%d && exec 3<>/tmp/in%d && "+
			"nc -l -p %d <&3 | { dd bs=1 count=1 of=/dev/null 2>/dev/null; time wc -c; }", port, port, port, port))
		got <- res{out, err}
	}()
	// 0A is LISTEN; the port is hex. busybox nc listens on IPv6 (dual stack) where the
	// namespace has it, else on IPv4.
	b.mustExec(t, "sh", "-c", fmt.Sprintf("until grep -qs ':%04X 0*:0000 0A' /proc/net/tcp /proc/net/tcp6; do :; done", port))
	a.mustExec(t, "sh", "-c", fmt.Sprintf("dd if=/dev/zero bs=65536 count=%d 2>/dev/null | nc %s %d", size/65536, b.ip(), port))
	r := <-got
	var n int
	for _, line := range strings.Split(r.out, "\n") {
		if v, err := strconv.Atoi(strings.TrimSpace(line)); err == nil {
			n = v + 1 // the first byte, read before the clock started
		}
	}
	m := realTime.FindStringSubmatch(r.out)
	if r.err != nil || n != size || m == nil {
		t.Fatalf("%s -> %s: received %d bytes of %d (%v):\n%s", a, b, n, size, r.err, r.out)
	}
	min, _ := strconv.Atoi(m[1])
	sec, _ := strconv.ParseFloat(m[2], 64)
	d := float64(min)*60 + sec
	if d <= 0 {
		t.Fatalf("%s -> %s: %d bytes in %q", a, b, n, m[0])
	}
	rate := float64(n-1) * 8 / d
	t.Logf("%s -> %s: %d bytes, the last %d in %.2f s by the receiver's clock: %.2f Mbit/s", a.name, b.name, n, n-1, d, rate/1e6)
	return rate
}
