//go:build integration

package neutron_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/osauth"
	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// These tests run against the sandbox stack of hack/stack.sh, which other tests share:
// every object a test makes carries a token unique to the test in its name, is deleted in
// t.Cleanup, and a final check (as admin, in Neutron and in OVN's Northbound database)
// fails the test if anything carrying the token is left.

// recorder sits in the HTTP transport of a client: it times every request by kind,
// counts them, and can inject a fault in place of a request.
type recorder struct {
	mu    sync.Mutex
	calls map[string][]time.Duration
	total int
	fail  func(*http.Request) bool
}

var uuidRE = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-f]{32}`)

// kind names a request by method, path (IDs elided) and the names of its filters.
func kind(r *http.Request) string {
	k := r.Method + " " + uuidRE.ReplaceAllString(r.URL.Path, "{id}")
	if q := r.URL.Query(); len(q) > 0 {
		keys := make([]string, 0, len(q))
		for key := range q {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		k += "?" + strings.Join(keys, "&")
	}
	return k
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (rec *recorder) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		rec.mu.Lock()
		rec.total++
		fail := rec.fail != nil && rec.fail(r)
		rec.mu.Unlock()
		if fail {
			return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error",
				Header:  http.Header{"Content-Type": {"application/json"}},
				Body:    io.NopCloser(strings.NewReader(`{"NeutronError": {"type": "Injected", "message": "injected fault", "detail": ""}}`)),
				Request: r, ProtoMajor: 1, ProtoMinor: 1}, nil
		}
		start := time.Now()
		resp, err := next.RoundTrip(r)
		rec.mu.Lock()
		if rec.calls == nil {
			rec.calls = map[string][]time.Duration{}
		}
		rec.calls[kind(r)] = append(rec.calls[kind(r)], time.Since(start))
		rec.mu.Unlock()
		return resp, err
	})
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.total
}

func (rec *recorder) setFail(f func(*http.Request) bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.fail = f
}

// countKind is how many requests of that kind went out.
func (rec *recorder) countKind(k string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.calls[k])
}

// log writes the latency of each kind of request: the stack's own figures.
func (rec *recorder) log(t *testing.T, who string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	keys := make([]string, 0, len(rec.calls))
	for k := range rec.calls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ds := slices.Clone(rec.calls[k])
		slices.Sort(ds)
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		t.Logf("latency %-8s %-55s n=%-3d min=%-8v median=%-8v max=%v", who, k, len(ds),
			ds[0].Round(time.Millisecond), ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
	}
}

// fixture is one test's view of the stack.
type fixture struct {
	t     *testing.T
	s     *testutil.Stack
	token string // in the name of everything the test makes
	ctx   context.Context
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := testutil.LoadStack(t)
	if len(s.VMs) < 2 {
		t.Fatalf("the stack needs 2 VMs, has %d", len(s.VMs))
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, s: s, token: "nit" + hex.EncodeToString(b), ctx: context.Background()}
	// Registered first, so it runs after every other cleanup of the test.
	t.Cleanup(f.checkNothingLeft)
	return f
}

// session authenticates as one of the stack's clouds through osauth, the way the product does.
func (f *fixture) session(cloud string, rec *recorder) *osauth.Session {
	f.t.Helper()
	sess, err := osauth.Authenticate(f.ctx, osauth.Options{
		Cloud:     cloud,
		Getenv:    func(k string) string { return map[string]string{"OS_CLIENT_CONFIG_FILE": f.s.CloudsFile()}[k] },
		Transport: rec.wrap,
	})
	if err != nil {
		f.t.Fatalf("authenticate as %s: %v", cloud, err)
	}
	return sess
}

// client is a Neutron client of the cloud whose requests the recorder sees.
func (f *fixture) client(cloud string) (*neutron.Client, *recorder) {
	f.t.Helper()
	rec := &recorder{}
	sess := f.session(cloud, rec)
	c, err := neutron.New(sess.Provider, sess.Endpoint)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { rec.log(f.t, cloud) })
	return c, rec
}

func (f *fixture) name(what string) string { return f.token + "-" + what }

// network creates a tenant-a network through the package and deletes it at the end.
func (f *fixture) network(c *neutron.Client, o neutron.CreateNetworkOpts) (*neutron.Network, string) {
	f.t.Helper()
	n, note, err := c.CreateNetwork(f.ctx, o)
	if err != nil {
		f.t.Fatalf("create network %s: %v", o.Name, err)
	}
	f.t.Cleanup(func() {
		if err := c.DeleteNetwork(context.Background(), n.ID); err != nil && !errors.Is(err, neutron.ErrNotFound) {
			f.t.Errorf("delete network %s: %v", n.ID, err)
		}
	})
	return n, note
}

// port creates a container port and deletes it at the end.
func (f *fixture) port(c *neutron.Client, r neutron.PortRequest) *neutron.Port {
	f.t.Helper()
	p, err := c.CreatePort(f.ctx, r)
	if err != nil {
		f.t.Fatalf("create port %s: %v", r.AttachmentID, err)
	}
	f.t.Cleanup(func() {
		if err := c.DeletePort(context.Background(), p.ID); err != nil {
			f.t.Errorf("delete port %s: %v", p.ID, err)
		}
	})
	return p
}

// trunk makes sure the VM's port is a trunk parent. A trunk the test made is deleted at
// the end unless another user of the shared stack has put subports on it meanwhile.
func (f *fixture) trunk(c *neutron.Client, vifID string) *neutron.Trunk {
	f.t.Helper()
	before, err := c.TrunkOf(f.ctx, vifID)
	if err != nil {
		f.t.Fatal(err)
	}
	tr, err := c.EnsureTrunk(f.ctx, vifID)
	if err != nil {
		f.t.Fatalf("ensure trunk on %s: %v", vifID, err)
	}
	if before == nil {
		f.t.Cleanup(func() {
			sc := c.ServiceClient()
			cur, err := trunks.Get(context.Background(), sc, tr.ID).Extract()
			if err != nil || len(cur.Subports) > 0 {
				return
			}
			if err := trunks.Delete(context.Background(), sc, tr.ID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
				f.t.Errorf("delete trunk %s: %v", tr.ID, err)
			}
		})
	}
	return tr
}

// addSubport puts the port on the trunk with a VLAN of a range the other users of the
// shared stack leave alone, trying another VLAN if one is taken.
func (f *fixture) addSubport(c *neutron.Client, tr *neutron.Trunk, portID string) int {
	f.t.Helper()
	for range 5 {
		vlan := randomVLAN(f.t)
		err := c.AddSubport(f.ctx, tr.ID, portID, vlan)
		if errors.Is(err, neutron.ErrVLANInUse) {
			continue
		}
		if err != nil {
			f.t.Fatalf("add subport %s vlan %d: %v", portID, vlan, err)
		}
		f.t.Cleanup(func() {
			if err := c.RemoveSubport(context.Background(), tr.ID, portID); err != nil {
				f.t.Errorf("remove subport %s: %v", portID, err)
			}
		})
		return vlan
	}
	f.t.Fatal("no free VLAN found in 5 tries")
	return 0
}

func randomVLAN(t *testing.T) int {
	n, err := rand.Int(rand.Reader, big.NewInt(1000))
	if err != nil {
		t.Fatal(err)
	}
	return 3000 + int(n.Int64())
}

// randomNet24 returns a /24 of 10.200.0.0/13 for a network that names its subnet.
func randomNet24(t *testing.T) netip.Prefix {
	n, err := rand.Int(rand.Reader, big.NewInt(8*256))
	if err != nil {
		t.Fatal(err)
	}
	v := int(n.Int64())
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + v/256), byte(v % 256), 0}), 24)
}

// nb reads one column of the Logical_Switch_Port named name; "" when there is none.
func (f *fixture) nb(portID, column string) string {
	f.t.Helper()
	out, err := exec.Command("ovn-nbctl", "--db="+f.s.Env["STACK_NB"], "--bare", "--columns="+column,
		"find", "logical_switch_port", "name="+portID).CombinedOutput()
	if err != nil {
		f.t.Fatalf("ovn-nbctl find %s: %v\n%s", portID, err, out)
	}
	return strings.TrimSpace(string(out))
}

// waitNB waits until the port's parent_name and tag in the Northbound database are the
// wanted ones: Neutron writes them to OVN right after its own database. ovn-nbctl's
// wait-until watches the row through an OVSDB monitor, for as long as the test's time
// lasts.
func (f *fixture) waitNB(portID, parent string, tag int) {
	f.t.Helper()
	want := []string{"parent_name=[]", "tag=[]"}
	if parent != "" {
		want[0] = "parent_name=" + strconv.Quote(parent)
	}
	if tag != 0 {
		want[1] = "tag=" + strconv.Itoa(tag)
	}
	ctx := testutil.Context(f.t)
	out, err := exec.CommandContext(ctx, "ovn-nbctl", append([]string{"--db=" + f.s.Env["STACK_NB"],
		"wait-until", "Logical_Switch_Port", portID}, want...)...).CombinedOutput()
	if err != nil {
		f.t.Fatalf("NB logical_switch_port %s: parent_name=%q tag=%q, want %s (ovn-nbctl wait-until: %v %s)",
			portID, f.nb(portID, "parent_name"), f.nb(portID, "tag"), strings.Join(want, " "), err, out)
	}
}

// checkNothingLeft fails the test if Neutron or OVN still hold anything named with the
// test's token.
func (f *fixture) checkNothingLeft() {
	t := f.t
	ctx := context.Background()
	admin := f.s.Network(t, "admin")
	pages, err := networks.List(admin, networks.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatalf("leak check: list networks: %v", err)
	}
	nets, _ := networks.ExtractNetworks(pages)
	for _, n := range nets {
		if strings.Contains(n.Name, f.token) {
			t.Errorf("leak: network %s %q is left", n.ID, n.Name)
		}
	}
	pages, err = ports.List(admin, ports.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatalf("leak check: list ports: %v", err)
	}
	ps, _ := ports.ExtractPorts(pages)
	for _, p := range ps {
		if strings.Contains(p.Name, f.token) {
			t.Errorf("leak: port %s %q is left", p.ID, p.Name)
		}
	}
	for _, table := range []string{"logical_switch", "logical_switch_port"} {
		out := f.s.NBCtl(t, "--bare", "--columns=external_ids", "list", table)
		if strings.Contains(out, f.token) {
			t.Errorf("leak: OVN NB %s still has a row of this test:\n%s", table, out)
		}
	}
}

// TestCreateNetworkWithSubnet: an explicit subnet and gateway are used as given, a second
// network of the same name is refused, and DeleteNetwork removes the network.
func TestCreateNetworkWithSubnet(t *testing.T) {
	f := newFixture(t)
	c, _ := f.client("tenant-a")
	cidr := randomNet24(t)
	gw := cidr.Addr().Next().Next().Next().Next() // .4: not the default, so Neutron must have taken it from us
	n, note := f.network(c, neutron.CreateNetworkOpts{Name: f.name("net"), Subnet: cidr, Gateway: gw})
	if n.Name != f.name("net") || n.ID == "" || n.MTU <= 0 {
		t.Fatalf("created network %+v", n)
	}
	if len(n.Subnets) != 1 || n.Subnets[0].CIDR != cidr || n.Subnets[0].Gateway != gw || n.Subnets[0].IPVersion != 4 {
		t.Fatalf("subnets %+v, want %s gateway %s", n.Subnets, cidr, gw)
	}
	if !strings.Contains(note, cidr.String()) || !strings.Contains(note, "as asked") {
		t.Errorf("note %q does not say the subnet was the one asked for", note)
	}
	// Neutron has it as reported.
	s, err := subnets.Get(f.ctx, c.ServiceClient(), n.Subnets[0].ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if s.CIDR != cidr.String() || s.GatewayIP != gw.String() || s.NetworkID != n.ID {
		t.Fatalf("neutron's subnet: cidr %s gateway %s network %s", s.CIDR, s.GatewayIP, s.NetworkID)
	}

	// The same name again is refused, and no second network appears.
	_, _, err = c.CreateNetwork(f.ctx, neutron.CreateNetworkOpts{Name: f.name("net"), Subnet: randomNet24(t)})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second network of the same name: got %v, want an 'already exists' error", err)
	}
	pages, err := networks.List(c.ServiceClient(), networks.ListOpts{Name: f.name("net")}).AllPages(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := networks.ExtractNetworks(pages); len(all) != 1 {
		t.Fatalf("%d networks named %s, want 1", len(all), f.name("net"))
	}

	// Delete: gone for FindNetwork, and a second delete says not found.
	if err := c.DeleteNetwork(f.ctx, n.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindNetwork(f.ctx, n.ID); !errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("find deleted network: got %v, want ErrNotFound", err)
	}
	if err := c.DeleteNetwork(f.ctx, n.ID); !errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("delete deleted network: got %v, want ErrNotFound", err)
	}
}

// TestCreateNetworkRefusesBadInputBeforeAnyCall: bad names, subnets and gateways are
// refused without a single request to Neutron.
func TestCreateNetworkRefusesBadInputBeforeAnyCall(t *testing.T) {
	f := newFixture(t)
	c, rec := f.client("tenant-a")
	good := randomNet24(t)
	cases := []struct {
		what string
		o    neutron.CreateNetworkOpts
		want string
	}{
		{"empty name", neutron.CreateNetworkOpts{}, "empty"},
		{"name like an ID", neutron.CreateNetworkOpts{Name: "4395c32f-3bd4-4209-821a-ad6abf8bd265"}, "looks like an ID"},
		{"control character", neutron.CreateNetworkOpts{Name: f.name("a\nb")}, "control character"},
		{"IPv6 as --subnet", neutron.CreateNetworkOpts{Name: f.name("x"), Subnet: netip.MustParsePrefix("fd00::/64")}, "not IPv4"},
		{"a /30", neutron.CreateNetworkOpts{Name: f.name("x"), Subnet: netip.MustParsePrefix("10.1.2.0/30")}, "too small"},
		{"a /7", neutron.CreateNetworkOpts{Name: f.name("x"), Subnet: netip.MustParsePrefix("10.0.0.0/7")}, "too large"},
		{"multicast", neutron.CreateNetworkOpts{Name: f.name("x"), Subnet: netip.MustParsePrefix("224.1.0.0/24")}, "not a unicast"},
		{"gateway outside", neutron.CreateNetworkOpts{Name: f.name("x"), Subnet: good, Gateway: netip.MustParseAddr("192.0.2.1")}, "not a host address"},
		{"gateway = network address", neutron.CreateNetworkOpts{Name: f.name("x"), Subnet: good, Gateway: good.Addr()}, "not a host address"},
		{"gateway = broadcast", neutron.CreateNetworkOpts{Name: f.name("x"), Subnet: good, Gateway: broadcast(good)}, "not a host address"},
		{"gateway without subnet", neutron.CreateNetworkOpts{Name: f.name("x"), Gateway: netip.MustParseAddr("10.1.2.1")}, "needs --subnet"},
		{"IPv4 as IPv6", neutron.CreateNetworkOpts{Name: f.name("x"), Subnet: good, IPv6: netip.MustParsePrefix("10.9.9.0/24")}, "not IPv6"},
		{"IPv6 /124", neutron.CreateNetworkOpts{Name: f.name("x"), Subnet: good, IPv6: netip.MustParsePrefix("fd00::/124")}, "too small"},
	}
	before := rec.count()
	for _, tc := range cases {
		_, _, err := c.CreateNetwork(f.ctx, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.what, err, tc.want)
		}
	}
	if n := rec.count() - before; n != 0 {
		t.Fatalf("bad input made %d requests to Neutron, want 0", n)
	}
}

func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// TestCreateNetworkFreePrivate24: with no subnet given (and no default pool on the
// stack), the network gets the first /24 from 10.10.0.0 on that overlaps none of the
// project's subnets, and the note says which.
func TestCreateNetworkFreePrivate24(t *testing.T) {
	f := newFixture(t)
	c, _ := f.client("tenant-a")
	used := func() []netip.Prefix {
		pages, err := subnets.List(c.ServiceClient(), subnets.ListOpts{IPVersion: 4}).AllPages(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, _ := subnets.ExtractSubnets(pages)
		var out []netip.Prefix
		for _, s := range all {
			out = append(out, netip.MustParsePrefix(s.CIDR))
		}
		return out
	}
	// Occupy the /24 that would be picked now, so the pick has to step over a subnet.
	first, err := neutron.FreePrefix(netip.MustParsePrefix("10.0.0.0/8"), 24, netip.MustParseAddr("10.10.0.0"), used())
	if err != nil {
		t.Fatal(err)
	}
	f.network(c, neutron.CreateNetworkOpts{Name: f.name("blocker"), Subnet: first})
	before := used()

	n, note := f.network(c, neutron.CreateNetworkOpts{Name: f.name("auto")})
	if len(n.Subnets) != 1 {
		t.Fatalf("subnets %+v, want one", n.Subnets)
	}
	got := n.Subnets[0].CIDR
	t.Logf("picked %s (blocked %s); note: %s", got, first, note)
	if got.Bits() != 24 || !netip.MustParsePrefix("10.0.0.0/8").Contains(got.Addr()) || got.Addr().Less(netip.MustParseAddr("10.10.0.0")) {
		t.Fatalf("picked %s, want a /24 of 10.0.0.0/8 at or after 10.10.0.0", got)
	}
	for _, u := range before {
		if u.Overlaps(got) {
			t.Fatalf("picked %s overlaps the project's subnet %s", got, u)
		}
	}
	if !strings.Contains(note, got.String()) || !strings.Contains(note, "free private /24") {
		t.Fatalf("note %q does not name %s as a free private /24", note, got)
	}
	if !n.Subnets[0].Gateway.IsValid() || !got.Contains(n.Subnets[0].Gateway) {
		t.Fatalf("gateway %s not in %s", n.Subnets[0].Gateway, got)
	}
}

// TestCreateNetworkIPv6: an IPv6 subnet comes next to the IPv4 one.
func TestCreateNetworkIPv6(t *testing.T) {
	f := newFixture(t)
	c, _ := f.client("tenant-a")
	v4 := randomNet24(t)
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	v6 := netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, b[0], b[1], b[2], b[3], b[4], b[5], 0}), 64)
	n, _ := f.network(c, neutron.CreateNetworkOpts{Name: f.name("dual"), Subnet: v4, IPv6: v6})
	if got := n.CIDRs(); !slices.Equal(got, []string{v4.String(), v6.String()}) {
		t.Fatalf("CIDRs %v, want [%s %s]", got, v4, v6)
	}
	if n.Subnets[1].IPVersion != 6 || !v6.Contains(n.Subnets[1].Gateway) {
		t.Fatalf("IPv6 subnet %+v", n.Subnets[1])
	}
	// FindNetwork reads both back from Neutron.
	found, err := c.FindNetwork(f.ctx, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(found.CIDRs(), n.CIDRs()) {
		t.Fatalf("FindNetwork CIDRs %v, want %v", found.CIDRs(), n.CIDRs())
	}
	// A port on it gets an address of each family.
	p := f.port(c, neutron.PortRequest{NetworkID: n.ID, AttachmentID: f.name("v6"), VIFID: f.s.VMs[0].VIFID()})
	var fams []bool
	for _, ip := range p.FixedIPs {
		fams = append(fams, ip.IP.Is4())
	}
	if len(p.FixedIPs) != 2 || fams[0] == fams[1] {
		t.Fatalf("port addresses %+v, want one IPv4 and one IPv6", p.FixedIPs)
	}
	// No security groups asked: the project's default. An empty list: none at all.
	if len(p.SecurityGroups) == 0 {
		t.Fatal("a port without SecurityGroups has no security group, want the project's default")
	}
	bare := f.port(c, neutron.PortRequest{NetworkID: n.ID, AttachmentID: f.name("nosg"), VIFID: f.s.VMs[0].VIFID(), SecurityGroups: []string{}})
	if got, err := c.GetPort(f.ctx, bare.ID); err != nil || len(got.SecurityGroups) != 0 {
		t.Fatalf("a port with SecurityGroups []: %+v, %v; want no security group", got, err)
	}
}

// TestCreateNetworkRollsBack: when a subnet cannot be made, the network made before it
// is deleted again.
func TestCreateNetworkRollsBack(t *testing.T) {
	f := newFixture(t)
	c, rec := f.client("tenant-a")
	for _, tc := range []struct {
		what string
		o    neutron.CreateNetworkOpts
		nth  int // the subnet POST that fails
	}{
		{"IPv4 subnet fails", neutron.CreateNetworkOpts{Name: f.name("rb4"), Subnet: randomNet24(t)}, 1},
		{"IPv6 subnet fails", neutron.CreateNetworkOpts{Name: f.name("rb6"), Subnet: randomNet24(t), IPv6: netip.MustParsePrefix("fd42:1::/64")}, 2},
	} {
		seen := 0
		rec.setFail(func(r *http.Request) bool {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/subnets") {
				seen++
				return seen == tc.nth
			}
			return false
		})
		_, _, err := c.CreateNetwork(f.ctx, tc.o)
		rec.setFail(nil)
		if err == nil || !strings.Contains(err.Error(), "injected fault") {
			t.Fatalf("%s: got %v, want the injected fault", tc.what, err)
		}
		if _, err := c.FindNetwork(f.ctx, tc.o.Name); !errors.Is(err, neutron.ErrNotFound) {
			t.Fatalf("%s: the network is still there after the failure (%v)", tc.what, err)
		}
	}
}

// TestFindNetwork: by name and ID, ambiguous names, unknown names, other tenants'
// networks, and ListNetworks.
func TestFindNetwork(t *testing.T) {
	f := newFixture(t)
	c, _ := f.client("tenant-a")
	cb, _ := f.client("tenant-b")
	cidr := randomNet24(t)
	n, _ := f.network(c, neutron.CreateNetworkOpts{Name: f.name("find"), Subnet: cidr})

	for _, key := range []string{n.Name, n.ID} {
		got, err := c.FindNetwork(f.ctx, key)
		if err != nil {
			t.Fatalf("find %s: %v", key, err)
		}
		if got.ID != n.ID || got.Name != n.Name || got.MTU != n.MTU || !slices.Equal(got.CIDRs(), []string{cidr.String()}) {
			t.Fatalf("find %s: %+v, want %+v", key, got, n)
		}
	}

	// Two networks of one name, made behind the package's back.
	var dup []string
	for range 2 {
		nw, err := networks.Create(f.ctx, c.ServiceClient(), networks.CreateOpts{Name: f.name("dup")}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = networks.Delete(context.Background(), c.ServiceClient(), nw.ID).ExtractErr() })
		dup = append(dup, nw.ID)
	}
	_, err := c.FindNetwork(f.ctx, f.name("dup"))
	if err == nil || !strings.Contains(err.Error(), "ambiguous") || !strings.Contains(err.Error(), dup[0]) || !strings.Contains(err.Error(), dup[1]) {
		t.Fatalf("ambiguous name: got %v, want an error naming %v", err, dup)
	}
	if errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("ambiguous name is not 'not found': %v", err)
	}

	if _, err := c.FindNetwork(f.ctx, f.name("nosuch")); !errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("unknown name: got %v, want ErrNotFound", err)
	}
	if _, err := c.FindNetwork(f.ctx, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("unknown ID: got %v, want ErrNotFound", err)
	}
	if _, err := c.FindNetwork(f.ctx, ""); err == nil || errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("empty name: got %v, want an error of its own", err)
	}

	// tenant-b sees none of it.
	for _, key := range []string{n.Name, n.ID} {
		if got, err := cb.FindNetwork(f.ctx, key); !errors.Is(err, neutron.ErrNotFound) {
			t.Fatalf("tenant-b finds tenant-a's network by %s: %+v, %v", key, got, err)
		}
	}
	all, err := cb.ListNetworks(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range all {
		if x.ID == n.ID {
			t.Fatal("tenant-b lists tenant-a's network")
		}
	}

	// ListNetworks has it, with its MTU and CIDR.
	all, err = c.ListNetworks(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var listed *neutron.Network
	for i := range all {
		if all[i].ID == n.ID {
			listed = &all[i]
		}
	}
	if listed == nil {
		t.Fatalf("ListNetworks lacks %s", n.ID)
	}
	if listed.MTU <= 0 || listed.MTU != n.MTU || !slices.Equal(listed.CIDRs(), []string{cidr.String()}) {
		t.Fatalf("listed %+v, want MTU %d and %s", listed, n.MTU, cidr)
	}
	if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].Name < all[j].Name }) {
		t.Fatal("ListNetworks is not sorted by name")
	}
}

// TestEnsureTrunkCreatesOnce: on a port that is no trunk parent yet, EnsureTrunk makes
// the trunk, and later or concurrent calls return that same trunk; there is only one.
// (The VMs' ports are shared with other tests and may be trunks already, so the test
// makes a parent port of its own.)
func TestEnsureTrunkCreatesOnce(t *testing.T) {
	f := newFixture(t)
	c, rec := f.client("tenant-a")
	n, _ := f.network(c, neutron.CreateNetworkOpts{Name: f.name("tp"), Subnet: randomNet24(t)})
	admin := f.s.Network(t, "admin")
	trunksOf := func(portID string) []trunks.Trunk {
		pages, err := trunks.List(admin, trunks.ListOpts{PortID: portID}).AllPages(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, _ := trunks.ExtractTrunks(pages)
		return all
	}
	parent := func(name string) string {
		p, err := ports.Create(f.ctx, c.ServiceClient(), ports.CreateOpts{NetworkID: n.ID, Name: f.name(name)}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// The trunk goes first: Neutron will not delete a trunk's parent port.
			for _, tr := range trunksOf(p.ID) {
				if err := trunks.Delete(context.Background(), admin, tr.ID).ExtractErr(); err != nil {
					t.Errorf("delete trunk %s: %v", tr.ID, err)
				}
			}
			if err := ports.Delete(context.Background(), c.ServiceClient(), p.ID).ExtractErr(); err != nil {
				t.Errorf("delete port %s: %v", p.ID, err)
			}
		})
		return p.ID
	}

	pid := parent("parent")
	if tr, err := c.TrunkOf(f.ctx, pid); err != nil || tr != nil {
		t.Fatalf("TrunkOf a fresh port: %+v, %v; want nil, nil", tr, err)
	}
	posts := rec.countKind("POST /v2.0/trunks")
	first, err := c.EnsureTrunk(f.ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	if rec.countKind("POST /v2.0/trunks") != posts+1 {
		t.Fatal("EnsureTrunk on a fresh port did not create a trunk")
	}
	second, err := c.EnsureTrunk(f.ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	if rec.countKind("POST /v2.0/trunks") != posts+1 {
		t.Fatal("EnsureTrunk on a trunk parent tried to create another trunk")
	}
	if first.ID == "" || second.ID != first.ID || first.ParentID != pid || len(first.Subports) != 0 {
		t.Fatalf("EnsureTrunk: %+v then %+v", first, second)
	}
	if all := trunksOf(pid); len(all) != 1 || all[0].ID != first.ID {
		t.Fatalf("neutron has %d trunks on the port, want just %s", len(all), first.ID)
	}

	// Racing callers on another fresh port all end with the one trunk.
	pid2 := parent("parent2")
	const racers = 4
	posts = rec.countKind("POST /v2.0/trunks")
	ids := make([]string, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := c.EnsureTrunk(f.ctx, pid2)
			errs[i] = err
			if err == nil {
				ids[i] = tr.ID
			}
		}()
	}
	wg.Wait()
	// More than one POST means some racers met Neutron's conflict and took the made trunk.
	t.Logf("%d racers sent %d trunk creations", racers, rec.countKind("POST /v2.0/trunks")-posts)
	all := trunksOf(pid2)
	if len(all) != 1 {
		t.Fatalf("%d trunks on the raced port, want 1", len(all))
	}
	for i := range racers {
		if errs[i] != nil || ids[i] != all[0].ID {
			t.Errorf("racer %d: trunk %q, error %v; want %s", i, ids[i], errs[i], all[0].ID)
		}
	}
}

// TestTrunkSubport: the VM's port becomes a trunk once; a container port on it with a
// VLAN shows in OVN as the VM port's child with that tag; a taken VLAN is ErrVLANInUse;
// removing and deleting twice is fine.
func TestTrunkSubport(t *testing.T) {
	f := newFixture(t)
	c, _ := f.client("tenant-a")
	vm1 := f.s.VMs[0]
	n, _ := f.network(c, neutron.CreateNetworkOpts{Name: f.name("trunk"), Subnet: randomNet24(t)})

	tr := f.trunk(c, vm1.VIFID())
	again, err := c.EnsureTrunk(f.ctx, vm1.VIFID())
	if err != nil {
		t.Fatal(err)
	}
	if tr.ID == "" || again.ID != tr.ID || tr.ParentID != vm1.VIFID() {
		t.Fatalf("EnsureTrunk: first %+v, then %+v; want one trunk with parent %s", tr, again, vm1.VIFID())
	}

	p1 := f.port(c, neutron.PortRequest{NetworkID: n.ID, AttachmentID: f.name("c1"), VIFID: vm1.VIFID()})
	if p1.Name != neutron.PortName(f.name("c1")) || p1.Description != neutron.Description(vm1.VIFID()) ||
		p1.DeviceOwner != neutron.DeviceOwner || len(p1.MAC) != 6 || len(p1.FixedIPs) != 1 || !n.Subnets[0].CIDR.Contains(p1.FixedIPs[0].IP) {
		t.Fatalf("created port %+v", p1)
	}
	vlan := f.addSubport(c, tr, p1.ID)
	f.waitNB(p1.ID, vm1.VIFID(), vlan)
	got, err := c.GetPort(f.ctx, p1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.DeviceOwner != "trunk:subport" {
		t.Fatalf("subport's device_owner %q, want trunk:subport", got.DeviceOwner)
	}
	cur, err := c.TrunkOf(f.ctx, vm1.VIFID())
	if err != nil {
		t.Fatal(err)
	}
	if cur.Subports[p1.ID] != vlan || !cur.VLANs()[vlan] {
		t.Fatalf("trunk subports %v, want %s on vlan %d", cur.Subports, p1.ID, vlan)
	}

	// Adding it again, as a retry would, is fine; with another VLAN it is not.
	if err := c.AddSubport(f.ctx, tr.ID, p1.ID, vlan); err != nil {
		t.Fatalf("add the same subport with the same vlan again: %v", err)
	}
	err = c.AddSubport(f.ctx, tr.ID, p1.ID, vlan+1)
	if err == nil || errors.Is(err, neutron.ErrVLANInUse) || !strings.Contains(err.Error(), fmt.Sprintf("already the trunk's subport with vlan %d", vlan)) {
		t.Fatalf("add the subport again with another vlan: %v", err)
	}
	// Neutron keeps a subport from being deleted: the trunk must let go of it first.
	err = c.DeletePort(f.ctx, p1.ID)
	if err == nil || !strings.Contains(err.Error(), "PortInUseAsSubPort") {
		t.Fatalf("delete a port that is a subport: got %v, want Neutron's PortInUseAsSubPort", err)
	}
	if _, err := c.GetPort(f.ctx, p1.ID); err != nil {
		t.Fatalf("the refused delete lost the port: %v", err)
	}

	// The same VLAN for another port.
	p2 := f.port(c, neutron.PortRequest{NetworkID: n.ID, AttachmentID: f.name("c2"), VIFID: vm1.VIFID()})
	err = c.AddSubport(f.ctx, tr.ID, p2.ID, vlan)
	if !errors.Is(err, neutron.ErrVLANInUse) {
		t.Fatalf("second port on vlan %d: got %v, want ErrVLANInUse", vlan, err)
	}
	if cur, _ := c.TrunkOf(f.ctx, vm1.VIFID()); cur == nil || cur.Subports[p2.ID] != 0 {
		t.Fatalf("the refused port is on the trunk anyway: %+v", cur)
	}

	// Remove twice, then the NB row has no parent any more.
	for i := range 2 {
		if err := c.RemoveSubport(f.ctx, tr.ID, p1.ID); err != nil {
			t.Fatalf("remove subport, time %d: %v", i+1, err)
		}
	}
	f.waitNB(p1.ID, "", 0)
	if cur, _ := c.TrunkOf(f.ctx, vm1.VIFID()); cur == nil || cur.Subports[p1.ID] != 0 {
		t.Fatalf("removed port still on the trunk: %+v", cur)
	}

	// Delete twice, then it is gone.
	for i := range 2 {
		if err := c.DeletePort(f.ctx, p1.ID); err != nil {
			t.Fatalf("delete port, time %d: %v", i+1, err)
		}
	}
	if _, err := c.GetPort(f.ctx, p1.ID); !errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("get deleted port: got %v, want ErrNotFound", err)
	}
	if f.nb(p1.ID, "name") != "" {
		t.Fatalf("NB still has the deleted port %s", p1.ID)
	}
	// A trunk that is gone is no error for RemoveSubport either.
	if err := c.RemoveSubport(f.ctx, "00000000-0000-4000-8000-000000000000", p2.ID); err != nil {
		t.Fatalf("remove from a missing trunk: %v", err)
	}
}

// TestPortLookups: PortByAttachment, VMPorts, PortsOnNetwork, PortByMAC, CreatePorts and
// SetTags.
func TestPortLookups(t *testing.T) {
	f := newFixture(t)
	c, rec := f.client("tenant-a")
	vm1, vm2 := f.s.VMs[0], f.s.VMs[1]
	n, _ := f.network(c, neutron.CreateNetworkOpts{Name: f.name("look"), Subnet: randomNet24(t)})

	p1 := f.port(c, neutron.PortRequest{NetworkID: n.ID, AttachmentID: f.name("a1"), VIFID: vm1.VIFID()})
	p3 := f.port(c, neutron.PortRequest{NetworkID: n.ID, AttachmentID: f.name("a3"), VIFID: vm2.VIFID()})

	got, err := c.PortByAttachment(f.ctx, vm1.VIFID(), f.name("a1"))
	if err != nil || got.ID != p1.ID {
		t.Fatalf("PortByAttachment: %+v, %v; want %s", got, err, p1.ID)
	}
	if _, err := c.PortByAttachment(f.ctx, vm1.VIFID(), f.name("nosuch")); !errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("PortByAttachment of an unknown attachment: got %v, want ErrNotFound", err)
	}
	// The attachment's port belongs to vm2, not to vm1.
	if _, err := c.PortByAttachment(f.ctx, vm1.VIFID(), f.name("a3")); !errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("PortByAttachment of another VM's attachment: got %v, want ErrNotFound", err)
	}

	// Bulk: three ports in one POST.
	var reqs []neutron.PortRequest
	for i := range 3 {
		reqs = append(reqs, neutron.PortRequest{NetworkID: n.ID, AttachmentID: f.name(fmt.Sprintf("b%d", i)), VIFID: vm1.VIFID()})
	}
	posts := rec.countKind("POST /v2.0/ports")
	bulk, err := c.CreatePorts(f.ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range bulk {
		t.Cleanup(func() { _ = c.DeletePort(context.Background(), p.ID) })
	}
	if d := rec.countKind("POST /v2.0/ports") - posts; d != 1 {
		t.Fatalf("CreatePorts of 3 made %d POSTs, want 1", d)
	}
	if len(bulk) != 3 {
		t.Fatalf("CreatePorts made %d ports, want 3", len(bulk))
	}
	for i, p := range bulk {
		if p.Name != neutron.PortName(reqs[i].AttachmentID) || p.Description != neutron.Description(vm1.VIFID()) || len(p.FixedIPs) != 1 {
			t.Fatalf("bulk port %d: %+v", i, p)
		}
	}
	// One bad request in a bulk: refused before any call, nothing made.
	before := rec.count()
	if _, err := c.CreatePorts(f.ctx, append(slices.Clone(reqs[:1]), neutron.PortRequest{NetworkID: n.ID})); err == nil {
		t.Fatal("bulk with a request lacking attachment and VM port: no error")
	}
	if rec.count() != before {
		t.Fatal("a bad bulk request made calls")
	}

	// VMPorts: vm1 has p1 and the bulk ports, vm2 has p3, each nothing of the other's.
	mine := func(vif string) []string {
		ps, err := c.VMPorts(f.ctx, vif)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, p := range ps {
			if p.Description != neutron.Description(vif) {
				t.Fatalf("VMPorts(%s) lists %s with description %q", vif, p.ID, p.Description)
			}
			if strings.Contains(p.Name, f.token) {
				ids = append(ids, p.ID)
			}
		}
		sort.Strings(ids)
		return ids
	}
	want1 := []string{p1.ID, bulk[0].ID, bulk[1].ID, bulk[2].ID}
	sort.Strings(want1)
	if got := mine(vm1.VIFID()); !slices.Equal(got, want1) {
		t.Fatalf("VMPorts(vm1) = %v, want %v", got, want1)
	}
	if got := mine(vm2.VIFID()); !slices.Equal(got, []string{p3.ID}) {
		t.Fatalf("VMPorts(vm2) = %v, want [%s]", got, p3.ID)
	}
	onNet, err := c.PortsOnNetwork(f.ctx, n.ID)
	if err != nil {
		t.Fatal(err)
	}
	var onNetIDs []string
	for _, p := range onNet {
		if strings.Contains(p.Name, f.token) {
			onNetIDs = append(onNetIDs, p.ID)
		}
	}
	if len(onNetIDs) != 5 {
		t.Fatalf("PortsOnNetwork: %d of the test's ports, want 5", len(onNetIDs))
	}

	// PortByMAC finds the VM's own port.
	mac, err := net.ParseMAC(vm1.Env["STACK_VM_MAC"])
	if err != nil {
		t.Fatal(err)
	}
	vmPort, err := c.PortByMAC(f.ctx, mac)
	if err != nil || vmPort.ID != vm1.VIFID() {
		t.Fatalf("PortByMAC(%s): %+v, %v; want %s", mac, vmPort, err, vm1.VIFID())
	}
	if _, err := c.PortByMAC(f.ctx, net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}); !errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("PortByMAC of an unknown MAC: got %v, want ErrNotFound", err)
	}

	// SetTags replaces the tags, sorted.
	tags := []string{neutron.TagVM + vm1.VIFID(), neutron.Tag, neutron.TagContainer + "c1"}
	if err := c.SetTags(f.ctx, p1.ID, tags); err != nil {
		t.Fatal(err)
	}
	if err := c.SetTags(f.ctx, p1.ID, tags[:2]); err != nil {
		t.Fatal(err)
	}
	got, err = c.GetPort(f.ctx, p1.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(tags[:2])
	sort.Strings(want)
	gotTags := slices.Clone(got.Tags)
	sort.Strings(gotTags)
	if !slices.Equal(gotTags, want) {
		t.Fatalf("tags %v, want %v", got.Tags, want)
	}
	if err := c.SetTags(f.ctx, "00000000-0000-4000-8000-000000000000", tags); !errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("tag a missing port: got %v, want ErrNotFound", err)
	}
}

// TestBindingProfileRefusedForTenant: Neutron's default policy keeps binding:profile to
// admins, and the error says so plainly; no port is left.
func TestBindingProfileRefusedForTenant(t *testing.T) {
	f := newFixture(t)
	c, _ := f.client("tenant-a")
	n, _ := f.network(c, neutron.CreateNetworkOpts{Name: f.name("bp"), Subnet: randomNet24(t)})
	vlan := randomVLAN(t)
	p, err := c.CreatePort(f.ctx, neutron.PortRequest{NetworkID: n.ID, AttachmentID: f.name("bp1"),
		VIFID: f.s.VMs[0].VIFID(), Mode: neutron.ModeBindingProfile, VLAN: vlan})
	if err == nil {
		_ = c.DeletePort(context.Background(), p.ID)
		t.Fatal("tenant-a made a binding-profile port")
	}
	t.Logf("tenant-a, binding-profile: %v", err)
	var uerr gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &uerr) || uerr.Actual != http.StatusForbidden {
		t.Fatalf("got %v, want a 403 from Neutron", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "PolicyNotAuthorized") || !strings.Contains(msg, "binding-profile mode needs admin") ||
		strings.Contains(msg, "http://") {
		t.Fatalf("error %q does not say plainly that binding-profile mode needs admin", msg)
	}
	if _, err := c.PortByAttachment(f.ctx, f.s.VMs[0].VIFID(), f.name("bp1")); !errors.Is(err, neutron.ErrNotFound) {
		t.Fatalf("a port was left: %v", err)
	}
}

// TestBindingProfileAsAdmin: admin's binding-profile port on tenant-a's network is the
// child of vm2's port in OVN with the VLAN as tag.
func TestBindingProfileAsAdmin(t *testing.T) {
	f := newFixture(t)
	c, _ := f.client("tenant-a")
	admin, arec := f.client("admin")
	vm2 := f.s.VMs[1]
	n, _ := f.network(c, neutron.CreateNetworkOpts{Name: f.name("bpa"), Subnet: randomNet24(t)})

	before := arec.count()
	for _, bad := range []int{0, 4095} {
		if _, err := admin.CreatePort(f.ctx, neutron.PortRequest{NetworkID: n.ID, AttachmentID: f.name("bad"),
			VIFID: vm2.VIFID(), Mode: neutron.ModeBindingProfile, VLAN: bad}); err == nil {
			t.Fatalf("binding-profile port with vlan %d: no error", bad)
		}
	}
	if arec.count() != before {
		t.Fatal("a bad VLAN made calls")
	}

	vlan := randomVLAN(t)
	p := f.port(admin, neutron.PortRequest{NetworkID: n.ID, AttachmentID: f.name("bpa1"), VIFID: vm2.VIFID(),
		Mode: neutron.ModeBindingProfile, VLAN: vlan})
	f.waitNB(p.ID, vm2.VIFID(), vlan)
	// The port is still an ovn-docker port of vm2 for lookups.
	got, err := admin.PortByAttachment(f.ctx, vm2.VIFID(), f.name("bpa1"))
	if err != nil || got.ID != p.ID || got.DeviceOwner != neutron.DeviceOwner {
		t.Fatalf("PortByAttachment: %+v, %v", got, err)
	}
}

// TestTenantBCannotTrunkTenantAVMPort: another project cannot make tenant-a's VM port a
// trunk; the error is ErrNotFound based, and no trunk appears.
func TestTenantBCannotTrunkTenantAVMPort(t *testing.T) {
	f := newFixture(t)
	cb, _ := f.client("tenant-b")
	vm1 := f.s.VMs[0]
	_, err := cb.EnsureTrunk(f.ctx, vm1.VIFID())
	if !errors.Is(err, neutron.ErrNotFound) || !strings.Contains(err.Error(), vm1.VIFID()) {
		t.Fatalf("tenant-b EnsureTrunk on tenant-a's port: got %v, want ErrNotFound naming the port", err)
	}
	t.Logf("tenant-b, EnsureTrunk: %v", err)
	projectB := f.session("tenant-b", &recorder{}).ProjectID
	if projectB == "" {
		t.Fatal("no project ID for tenant-b")
	}
	admin := f.s.Network(t, "admin")
	pages, err := trunks.List(admin, trunks.ListOpts{PortID: vm1.VIFID()}).AllPages(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := trunks.ExtractTrunks(pages)
	for _, tr := range all {
		if tr.ProjectID == projectB {
			t.Fatalf("tenant-b made trunk %s on tenant-a's port", tr.ID)
		}
	}
}
