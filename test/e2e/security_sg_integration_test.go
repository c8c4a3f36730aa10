//go:build integration

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// tcpServer answers "pong-PORT" on each port, to every connection.
func tcpServer(ports ...int) []string {
	var sh []string
	for _, p := range ports {
		sh = append(sh, fmt.Sprintf("nc -ll -p %d -e echo pong-%d &", p, p))
	}
	return []string{"sh", "-c", strings.Join(sh, " ") + " wait"}
}

// connects reports whether a real TCP connection from the container to ip:port gets the
// server's answer.
func (b *box) connects(ip string, port int) (bool, string) {
	out, _ := b.exec("sh", "-c", fmt.Sprintf("nc -w 3 %s %d </dev/null", ip, port))
	return strings.Contains(out, fmt.Sprintf("pong-%d", port)), out
}

// createGroup makes a security group of the tenant, deleted at the end of the test (its
// containers must be gone by then: register their removal after this).
func createGroup(t *testing.T, nc *gophercloud.ServiceClient, name string) string {
	t.Helper()
	ctx := context.Background()
	g, err := groups.Create(ctx, nc, groups.CreateOpts{Name: name, Description: "ovn-docker security test"}).Extract()
	if err != nil {
		t.Fatalf("create security group %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := groups.Delete(ctx, nc, g.ID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
			t.Errorf("delete security group %s: %v", name, err)
		}
	})
	return g.ID
}

func allowTCP(t *testing.T, nc *gophercloud.ServiceClient, group string, port int) string {
	t.Helper()
	r, err := rules.Create(context.Background(), nc, rules.CreateOpts{
		Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: group,
		Protocol: rules.ProtocolTCP, PortRangeMin: port, PortRangeMax: port, RemoteIPPrefix: "0.0.0.0/0",
	}).Extract()
	if err != nil {
		t.Fatalf("allow tcp %d in %s: %v", port, group, err)
	}
	return r.ID
}

// TestSecurityGroups: --security-group NAME|ID (repeatable) puts the container's port in
// those groups, and none given puts it in the project's default group; real TCP
// connections through busybox's nc pass where a group allows the port and fail where
// none does, and a rule added to a running container's group opens its port.
func TestSecurityGroups(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vms := s.TenantVMs(t, 2)
	vm1, vm2 := vms[0], vms[1]
	ls := tenantNetwork(t, vm1, uniq("sg"))
	nc := s.Network(t, "tenant-a")
	allowName := uniq("sec-allow-8080")
	allow := createGroup(t, nc, allowName)
	allowTCP(t, nc, allow, 8080)
	closed := createGroup(t, nc, uniq("sec-closed")) // Neutron's new group: egress only
	def := defaultGroup(t, nc)
	t.Cleanup(func() { cleanVM(t, vm1); cleanVM(t, vm2) })

	on := []string{"--network", ls}
	bs := runBoxes(t,
		boxSpec{vm: vm2, name: "sg-allow", global: slices.Concat(on, []string{"--security-group", allowName}), cmd: tcpServer(8080, 8081)},
		boxSpec{vm: vm2, name: "sg-closed", global: slices.Concat(on, []string{"--security-group", closed}), cmd: tcpServer(8080)},
		boxSpec{vm: vm2, name: "sg-default", global: on, cmd: tcpServer(8080)},
		boxSpec{vm: vm2, name: "sg-both", global: slices.Concat(on, []string{"--security-group", closed, "--security-group", allow}), cmd: tcpServer(8080)},
		boxSpec{vm: vm1, name: "sg-client", global: on},                                                        // default group
		boxSpec{vm: vm1, name: "sg-stranger", global: slices.Concat(on, []string{"--security-group", closed})}, // not in default
		boxSpec{vm: vm2, name: "sg-local-client", global: on})                                                  // in the servers' VM
	srvAllow, srvClosed, srvDefault, srvBoth, cli, stranger, local := bs[0], bs[1], bs[2], bs[3], bs[4], bs[5], bs[6]

	// Neutron holds the groups asked for, or the default one.
	for _, tc := range []struct {
		b    *box
		want []string
	}{{srvAllow, []string{allow}}, {srvClosed, []string{closed}}, {srvDefault, []string{def}}, {srvBoth, []string{allow, closed}}, {cli, []string{def}}} {
		p, err := ports.Get(context.Background(), nc, tc.b.eth0.Port).Extract()
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(slices.Values(p.SecurityGroups))
		if want := slices.Sorted(slices.Values(tc.want)); !slices.Equal(got, want) {
			t.Fatalf("%s's port is in groups %v, want %v", tc.b, got, want)
		}
	}
	// Every server listens: from inside itself each port answers.
	for _, b := range []*box{srvAllow, srvClosed, srvDefault, srvBoth} {
		ports := []int{8080}
		if b == srvAllow {
			ports = append(ports, 8081)
		}
		for _, p := range ports {
			if ok, out := b.connects("127.0.0.1", p); !ok {
				t.Fatalf("control: %s does not answer on its own port %d: %s", b, p, out)
			}
		}
	}

	for _, tc := range []struct {
		name string
		from *box
		to   *box
		port int
		want bool
	}{
		{"a group allowing the port", cli, srvAllow, 8080, true},
		{"a group allowing the port, from outside the default group", stranger, srvAllow, 8080, true},
		{"a port the group does not allow", cli, srvAllow, 8081, false},
		{"a group with no ingress rule", cli, srvClosed, 8080, false},
		{"two groups, one allowing the port", cli, srvBoth, 8080, true},
		{"the default group, from a member", cli, srvDefault, 8080, true},
		{"the default group, from a non-member", stranger, srvDefault, 8080, false},
		// In one VM the containers' traffic still passes the hypervisor: each has its VLAN.
		{"a group allowing the port, from the same VM", local, srvAllow, 8080, true},
		{"a port the group does not allow, from the same VM", local, srvAllow, 8081, false},
		{"a group with no ingress rule, from the same VM", local, srvClosed, 8080, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want {
				mustConnect(t, tc.from, tc.to, tc.port)
				return
			}
			unreached(t, tc.from, tc.to, fmt.Sprintf("a TCP SYN to port %d", tc.port), tcpSYN(tc.from.ip(), tc.port),
				func() (bool, string) { return tc.from.connects(tc.to.ip().String(), tc.port) })
		})
	}
	unreached(t, cli, srvClosed, "an echo request", func(f frame) bool { src, ok := f.ipv4Src(); return ok && src == cli.ip() && f.payload[9] == 1 },
		func() (bool, string) { return cli.pings(srvClosed.ip().String()) })
	cli.mustPing(t, srvDefault.ip().String())

	// A rule added to the group opens the port of the running container: the connection
	// comes once OVN has the rule.
	allowTCP(t, nc, allow, 8081)
	mustConnect(t, cli, srvAllow, 8081)
}

// mustConnect waits, as long as the test may run, until a TCP connection from the
// container to the server's port gets its answer (nc gives up after 3 s: it tries again).
func mustConnect(t *testing.T, from, to *box, port int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("TCP %s -> %s:%d connects", from, to, port), func() (bool, string) {
		return from.connects(to.ip().String(), port)
	})
}

// unreached runs try, an attempt of from to reach to (a connection, a ping), with a
// capture on to, closes the capture with a fence from from (an ARP reply: groups filter
// IP only, so it passes where nothing else may) and fails the test if try got through or
// to received what of it matches. The attempt's own timeout only ends it: that nothing
// came through is what the fence tells.
func unreached(t *testing.T, from, to *box, what string, match func(frame) bool, try func() (bool, string)) {
	t.Helper()
	rx := to.listen(t)
	ok, out := try()
	fence(t, from.arpFence(from.sender(t)), rx)
	if ok {
		t.Fatalf("%s got through to %s:\n%s", from, to, out)
	}
	if got := rx.seen(match); len(got) > 0 {
		t.Fatalf("%s received %d frame(s) of %s from %s: first %s", to, len(got), what, from, got[0])
	}
}
