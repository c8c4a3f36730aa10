//go:build integration

package ovs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

const testBridge = "br0"

// newOVS starts a private OVS with bridge br0 and a Client connected to it.
func newOVS(t testing.TB) (*testutil.OVS, *Client) {
	t.Helper()
	o := testutil.StartOVS(t, "")
	o.AddBridge(t, testBridge)
	return o, dial(t, o.Endpoint)
}

func dial(t testing.TB, endpoint string) *Client {
	t.Helper()
	c, err := Dial(testutil.Context(t), endpoint)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// testCtx bounds a test's operations by the run's time only (see testutil.Context): a
// slow machine makes them slower, not failed.
func testCtx(t testing.TB) context.Context { return testutil.Context(t) }

// newNetNS makes a scratch network namespace, deleted (with its devices) on cleanup.
func newNetNS(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "ovstc-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

// nsHandle is a netlink handle working in namespace name, without moving any thread.
func nsHandle(t testing.TB, name string) (*netlink.Handle, netns.NsHandle) {
	t.Helper()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		t.Fatalf("netlink in %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close(); ns.Close() })
	return h, ns
}

// addVeth creates veth name in namespace ovsNS with its peer, called peer, in
// namespace peerNS (which may be ovsNS) and sets both up. addr, if set, goes on
// the peer. Deleting either namespace removes the pair.
func addVeth(t testing.TB, ovsNS, name, peerNS, peer, addr string) {
	t.Helper()
	h, _ := nsHandle(t, ovsNS)
	ph, pns := nsHandle(t, peerNS)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: name},
		PeerName:      peer,
		PeerNamespace: netlink.NsFd(int(pns)),
	}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s/%s: %v", name, peer, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("veth %s: %v", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatalf("set %s up: %v", name, err)
	}
	pl, err := ph.LinkByName(peer)
	if err != nil {
		t.Fatalf("veth peer %s: %v", peer, err)
	}
	if addr != "" {
		a, err := netlink.ParseAddr(addr)
		if err != nil {
			t.Fatalf("parse %s: %v", addr, err)
		}
		if err := ph.AddrAdd(pl, a); err != nil {
			t.Fatalf("add %s to %s: %v", addr, peer, err)
		}
	}
	if err := ph.LinkSetUp(pl); err != nil {
		t.Fatalf("set %s up: %v", peer, err)
	}
}

// portNames lists the names of all Port rows in the database, whichever bridge.
func portNames(t testing.TB, o *testutil.OVS) []string {
	t.Helper()
	return strings.Fields(o.Vsctl(t, "--bare", "--columns=name", "list", "Port"))
}

func hasPort(t testing.TB, o *testutil.OVS, name string) bool {
	t.Helper()
	for _, n := range portNames(t, o) {
		if n == name {
			return true
		}
	}
	return false
}

func findPort(ports []PortInfo, name string) (PortInfo, bool) {
	for _, p := range ports {
		if p.Name == name {
			return p, true
		}
	}
	return PortInfo{}, false
}

func TestAddAccessPortLifecycle(t *testing.T) {
	t.Parallel()
	o, c := newOVS(t)
	ctx := testCtx(t)
	addVeth(t, o.NetNS, "vc1", o.NetNS, "vc1p", "")

	ext := map[string]string{"ovn-docker-container": "abc123", "ovn-docker-vlan": "100"}
	if err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "vc1", Tag: 100, ExternalIDs: ext}); err != nil {
		t.Fatalf("AddAccessPort: %v", err)
	}
	if got := o.Vsctl(t, "get", "Port", "vc1", "tag"); got != "100" {
		t.Errorf("tag = %q, want 100", got)
	}
	if got := o.Vsctl(t, "port-to-br", "vc1"); got != testBridge {
		t.Errorf("port-to-br = %q, want %s", got, testBridge)
	}
	ofport, err := strconv.Atoi(o.Vsctl(t, "get", "Interface", "vc1", "ofport"))
	if err != nil || ofport <= 0 {
		t.Errorf("ofport = %d (%v), want > 0", ofport, err)
	}
	if got := o.Vsctl(t, "get", "Port", "vc1", "external_ids:ovn-docker-container"); got != `abc123` {
		t.Errorf("port external_ids:ovn-docker-container = %s, want abc123", got)
	}
	if got := o.Vsctl(t, "get", "Interface", "vc1", "external_ids:ovn-docker-vlan"); got != `"100"` {
		t.Errorf("interface external_ids:ovn-docker-vlan = %s, want \"100\"", got)
	}

	// Our own write is visible to Ports and UsedTags as soon as AddAccessPort returns.
	ports, err := c.Ports(ctx, testBridge)
	if err != nil {
		t.Fatalf("Ports: %v", err)
	}
	p, ok := findPort(ports, "vc1")
	if !ok {
		t.Fatalf("Ports does not list vc1: %+v", ports)
	}
	if p.Tag != 100 || p.OFPort != ofport || p.Error != "" || !maps.Equal(p.ExternalIDs, ext) {
		t.Errorf("Ports: vc1 = %+v, want tag 100, ofport %d, no error, external_ids %v", p, ofport, ext)
	}
	if _, ok := findPort(ports, testBridge); !ok {
		t.Errorf("Ports does not list the bridge's own port: %+v", ports)
	}
	used, err := c.UsedTags(ctx, testBridge)
	if err != nil {
		t.Fatalf("UsedTags: %v", err)
	}
	if !maps.Equal(used, map[int]bool{100: true}) {
		t.Errorf("UsedTags = %v, want {100}", used)
	}

	// Same name and tag again: success, external_ids replaced.
	ext2 := map[string]string{"ovn-docker-container": "def456"}
	if err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "vc1", Tag: 100, ExternalIDs: ext2}); err != nil {
		t.Fatalf("AddAccessPort again: %v", err)
	}
	if got := o.Vsctl(t, "get", "Port", "vc1", "external_ids"); got != `{ovn-docker-container=def456}` {
		t.Errorf("external_ids after re-add = %s, want {ovn-docker-container=def456}", got)
	}
	if n := strings.Count(strings.Join(portNames(t, o), " "), "vc1"); n != 1 {
		t.Errorf("%d ports named vc1 after re-add, want 1", n)
	}

	// Same name, other tag: refused, and the port keeps its tag.
	err = c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "vc1", Tag: 200})
	if err == nil || !strings.Contains(err.Error(), "tag 100") {
		t.Errorf("AddAccessPort with other tag: err = %v, want one naming tag 100", err)
	}
	if got := o.Vsctl(t, "get", "Port", "vc1", "tag"); got != "100" {
		t.Errorf("tag after refused re-add = %q, want 100", got)
	}

	if err := c.DeletePort(ctx, testBridge, "vc1"); err != nil {
		t.Fatalf("DeletePort: %v", err)
	}
	if hasPort(t, o, "vc1") {
		t.Errorf("port vc1 still in the database after DeletePort")
	}
	if got := o.Vsctl(t, "--bare", "--columns=name", "find", "Interface", "name=vc1"); got != "" {
		t.Errorf("interface vc1 still in the database after DeletePort: %q", got)
	}
	used, err = c.UsedTags(ctx, testBridge)
	if err != nil {
		t.Fatalf("UsedTags: %v", err)
	}
	if len(used) != 0 {
		t.Errorf("UsedTags after delete = %v, want empty", used)
	}
	if err := c.DeletePort(ctx, testBridge, "vc1"); err != nil {
		t.Errorf("DeletePort of a missing port: %v, want nil", err)
	}
}

func TestAddAccessPortUnknownBridge(t *testing.T) {
	t.Parallel()
	o, c := newOVS(t)
	ctx := testCtx(t)
	addVeth(t, o.NetNS, "vc2", o.NetNS, "vc2p", "")

	err := c.AddAccessPort(ctx, AccessPort{Bridge: "br9", Name: "vc2", Tag: 10})
	want := "bridge br9 not found in " + o.Endpoint
	if err == nil || err.Error() != want {
		t.Fatalf("AddAccessPort on br9: err = %v, want %q", err, want)
	}
	if got := portNames(t, o); len(got) != 1 || got[0] != testBridge {
		t.Errorf("ports after failed add = %v, want only %s", got, testBridge)
	}
	if _, err := c.Ports(ctx, "br9"); err == nil || err.Error() != want {
		t.Errorf("Ports(br9): err = %v, want %q", err, want)
	}
	// The name stays free: adding to the right bridge works.
	if err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "vc2", Tag: 10}); err != nil {
		t.Errorf("AddAccessPort after failed add: %v", err)
	}
}

func TestAddAccessPortNoDevice(t *testing.T) {
	t.Parallel()
	o, c := newOVS(t)
	ctx := testCtx(t)

	err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "nodev7", Tag: 7})
	if err == nil {
		t.Fatal("AddAccessPort of a missing device succeeded")
	}
	// The error quotes ovs-vswitchd's Interface.error.
	if !strings.Contains(err.Error(), "could not open network device nodev7") {
		t.Errorf("err = %v, want it to quote ovs-vswitchd", err)
	}
	if hasPort(t, o, "nodev7") {
		t.Errorf("port nodev7 left behind after failed add")
	}
	if got := o.Vsctl(t, "--bare", "--columns=name", "find", "Interface", "name=nodev7"); got != "" {
		t.Errorf("interface nodev7 left behind: %q", got)
	}
	used, err := c.UsedTags(ctx, testBridge)
	if err != nil {
		t.Fatalf("UsedTags: %v", err)
	}
	if used[7] {
		t.Errorf("UsedTags still has 7 after rollback: %v", used)
	}
}

// A port that already exists (added by someone else) with a broken device is
// reported but not removed: it is not this call's to roll back.
func TestAddAccessPortExistingBroken(t *testing.T) {
	t.Parallel()
	o, c := newOVS(t)
	ctx := testCtx(t)
	o.Vsctl(t, "--no-wait", "add-port", testBridge, "gone1", "tag=5")

	err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "gone1", Tag: 5})
	if err == nil || !strings.Contains(err.Error(), "could not open network device gone1") {
		t.Errorf("err = %v, want ovs-vswitchd's error for gone1", err)
	}
	if !hasPort(t, o, "gone1") {
		t.Errorf("pre-existing port gone1 was removed")
	}
}

// A name taken by an interface of another port (here a bond member) is refused
// without touching that port.
func TestAddAccessPortNameOfBondMember(t *testing.T) {
	t.Parallel()
	o, c := newOVS(t)
	ctx := testCtx(t)
	o.Vsctl(t, "--no-wait", "add-bond", testBridge, "bond0", "mem0", "mem1")

	err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "mem0", Tag: 8})
	if err == nil || !strings.Contains(err.Error(), "belongs to another port") {
		t.Errorf("AddAccessPort mem0: err = %v, want a name clash", err)
	}
	if got := portNames(t, o); len(got) != 2 || !hasPort(t, o, "bond0") {
		t.Errorf("ports after refused add = %v, want br0 and bond0 only", got)
	}
}

// TestAddAccessPortTimeoutRollsBack: when the caller's context ends while ovs-vswitchd
// has not confirmed the change (here it is frozen), the port is rolled back.
func TestAddAccessPortTimeoutRollsBack(t *testing.T) {
	t.Parallel()
	o, c := newOVS(t)
	addVeth(t, o.NetNS, "vc3", o.NetNS, "vc3p", "")

	// A frozen ovs-vswitchd never confirms the change.
	pid := vswitchdPid(t, o)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP ovs-vswitchd: %v", err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw)

	// timedOut runs AddAccessPort with a context that ends, as a timeout would, the
	// moment the call waits for ovs-vswitchd: after its transaction, before any answer.
	var cutOff atomic.Pointer[context.CancelFunc]
	c.onWait = func(what string) {
		if f := cutOff.Load(); f != nil && what == "ovs-vswitchd" {
			(*f)()
		}
	}
	timedOut := func(name string) error {
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		cutOff.Store(&cancel)
		defer cutOff.Store(nil)
		return c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: name, Tag: 3})
	}

	err := timedOut("vc3")
	if err == nil || !strings.Contains(err.Error(), "wait for ovs-vswitchd") || !errors.Is(err, context.Canceled) {
		t.Fatalf("AddAccessPort with frozen ovs-vswitchd: err = %v, want a wait error ending with the context", err)
	}
	// The rollback happened in the database even though ovs-vswitchd never answered.
	if hasPort(t, o, "vc3") {
		t.Errorf("port vc3 left behind after timed-out add")
	}
	// A port that was there before the call survives the same failure.
	o.Vsctl(t, "--no-wait", "add-port", testBridge, "old3", "tag=3")
	if err := timedOut("old3"); err == nil || !strings.Contains(err.Error(), "wait for ovs-vswitchd") {
		t.Errorf("AddAccessPort of existing old3 with frozen ovs-vswitchd: err = %v, want a wait error", err)
	}
	if !hasPort(t, o, "old3") {
		t.Errorf("pre-existing port old3 removed by a failed AddAccessPort")
	}
	thaw()
	if err := c.AddAccessPort(testCtx(t), AccessPort{Bridge: testBridge, Name: "vc3", Tag: 3}); err != nil {
		t.Errorf("AddAccessPort after thaw: %v", err)
	}
}

func vswitchdPid(t testing.TB, o *testutil.OVS) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(o.Dir, "ovs-vswitchd.pid"))
	if err != nil {
		t.Fatalf("read ovs-vswitchd pidfile: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("parse ovs-vswitchd pidfile: %v", err)
	}
	return pid
}

func TestDeletePortOtherBridge(t *testing.T) {
	t.Parallel()
	o, c := newOVS(t)
	ctx := testCtx(t)
	o.AddBridge(t, "br1")
	addVeth(t, o.NetNS, "vc4", o.NetNS, "vc4p", "")
	if err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "vc4", Tag: 4}); err != nil {
		t.Fatalf("AddAccessPort: %v", err)
	}

	if err := c.DeletePort(ctx, "br1", "vc4"); err == nil || !strings.Contains(err.Error(), "on bridge "+testBridge) {
		t.Errorf("DeletePort on the wrong bridge: err = %v, want one naming %s", err, testBridge)
	}
	if got := o.Vsctl(t, "port-to-br", "vc4"); got != testBridge {
		t.Errorf("vc4 is on %q after refused delete, want %s", got, testBridge)
	}
	err := c.AddAccessPort(ctx, AccessPort{Bridge: "br1", Name: "vc4", Tag: 4})
	if err == nil || !strings.Contains(err.Error(), "already exists on bridge "+testBridge) {
		t.Errorf("AddAccessPort of vc4 to br1: err = %v, want one naming %s", err, testBridge)
	}
	if got := o.Vsctl(t, "port-to-br", "vc4"); got != testBridge {
		t.Errorf("vc4 is on %q after refused add, want %s", got, testBridge)
	}
}

func TestUsedTagsTrunks(t *testing.T) {
	t.Parallel()
	o, c := newOVS(t)
	ctx := testCtx(t)
	addVeth(t, o.NetNS, "up0", o.NetNS, "up0p", "")
	addVeth(t, o.NetNS, "vc5", o.NetNS, "vc5p", "")
	// Another process (ovs-vsctl) adds a trunk port; our monitor has to pick it up.
	o.Vsctl(t, "add-port", testBridge, "up0", "trunks=5,6")
	if err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "vc5", Tag: 42}); err != nil {
		t.Fatalf("AddAccessPort: %v", err)
	}

	// ovs-vsctl's port reaches this client through its monitor: wait for the cache
	// updates until the tags are there (the test's time bounds a monitor that never
	// delivers it).
	want := map[int]bool{5: true, 6: true, 42: true}
	var used map[int]bool
	err := c.do(ctx, func(cn *conn) error {
		return cn.waitFor(ctx, func() (bool, error) {
			ports, err := cn.ports(testBridge, c.endpoint)
			used = usedTags(ports)
			return maps.Equal(used, want), err
		})
	})
	if err != nil {
		t.Fatalf("wait for the monitor to show tags %v (last seen %v): %v", want, used, err)
	}
	if used, err := c.UsedTags(ctx, testBridge); err != nil || !maps.Equal(used, want) {
		t.Errorf("UsedTags = %v, %v; want %v", used, err, want)
	}
	ports, err := c.Ports(ctx, testBridge)
	if err != nil {
		t.Fatalf("Ports: %v", err)
	}
	if p, _ := findPort(ports, "up0"); p.Tag != 0 || fmt.Sprint(p.Trunks) != "[5 6]" {
		t.Errorf("Ports: up0 = %+v, want no tag and trunks [5 6]", p)
	}
}

// TestConcurrentAddDelete has several clients (one per process in real life) add and
// then delete 50 ports at the same time on one bridge.
func TestConcurrentAddDelete(t *testing.T) {
	t.Parallel()
	o, _ := newOVS(t)
	ctx := testCtx(t)
	const n, nClients = 50, 5
	clients := make([]*Client, nClients)
	for i := range clients {
		clients[i] = dial(t, o.Endpoint)
	}
	name := func(i int) string { return fmt.Sprintf("cc%02d", i) }
	for i := 0; i < n; i++ {
		addVeth(t, o.NetNS, name(i), o.NetNS, name(i)+"p", "")
	}

	run := func(op func(c *Client, i int) error) {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := op(clients[i%nClients], i); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}

	run(func(c *Client, i int) error {
		return c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: name(i), Tag: 100 + i,
			ExternalIDs: map[string]string{"ovn-docker-port": name(i)}})
	})
	out := o.Vsctl(t, "--format=csv", "--data=bare", "--no-headings", "--columns=name,tag", "list", "Port")
	tags := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ","); len(f) == 2 {
			tags[f[0]] = f[1]
		}
	}
	for i := 0; i < n; i++ {
		if got := tags[name(i)]; got != strconv.Itoa(100+i) {
			t.Errorf("port %s: tag %q, want %d", name(i), got, 100+i)
		}
	}
	if len(tags) != n+1 {
		t.Errorf("%d ports in the database, want %d", len(tags), n+1)
	}
	for _, c := range clients {
		used, err := c.UsedTags(ctx, testBridge)
		if err != nil {
			t.Fatalf("UsedTags: %v", err)
		}
		// Each client waited only for its own ports; the others are a monitor update away.
		if len(used) > n {
			t.Errorf("UsedTags has %d tags, want at most %d", len(used), n)
		}
	}

	run(func(c *Client, i int) error { return c.DeletePort(ctx, testBridge, name(i)) })
	if got := portNames(t, o); len(got) != 1 || got[0] != testBridge {
		t.Errorf("ports after concurrent delete = %v, want only %s", got, testBridge)
	}
}

// TestDataPlane sends real packets between two namespaces attached as access ports:
// they reach each other on the same VLAN and not on different ones.
func TestDataPlane(t *testing.T) {
	t.Parallel()
	o, c := newOVS(t)
	ctx := testCtx(t)
	nsA, nsB := newNetNS(t), newNetNS(t)
	addVeth(t, o.NetNS, "vpa", nsA, "eth0", "10.77.0.1/24")
	addVeth(t, o.NetNS, "vpb", nsB, "eth0", "10.77.0.2/24")

	add := func(name string, tag int) {
		t.Helper()
		if err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: name, Tag: tag}); err != nil {
			t.Fatalf("AddAccessPort %s tag %d: %v", name, tag, err)
		}
	}
	retag := func(name string, tag int) {
		t.Helper()
		if err := c.DeletePort(ctx, testBridge, name); err != nil {
			t.Fatalf("DeletePort %s: %v", name, err)
		}
		add(name, tag)
	}
	// pings reports whether 3 pings from A all come back. A reply that comes late (a busy
	// machine) or not at all is tried again: the test's time bounds the tries, and they
	// stop when an OVS daemon died.
	pings := func() error {
		for {
			out, err := exec.CommandContext(ctx, "ip", "netns", "exec", nsA, "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "1", "10.77.0.2").CombinedOutput()
			if err == nil && strings.Contains(string(out), " 3 received") {
				return nil
			}
			if err := o.DiedError(); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return fmt.Errorf("not 3 replies when the test's time was up: %v\n%s", err, out)
			}
		}
	}
	// floods says whether ovs-vswitchd sends a broadcast from vpa out of vpb: its own
	// answer for the bridge as it is configured now, with no packet and no timing.
	floods := func() bool {
		t.Helper()
		dpPort := regexp.MustCompile(`(?m)^\s+vpb \d+/(\d+):`).FindStringSubmatch(o.Appctl(t, "dpif/show"))
		if dpPort == nil {
			t.Fatalf("vpb is not in ovs-vswitchd's datapath")
		}
		trace := o.Appctl(t, "ofproto/trace", testBridge, "in_port=vpa,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,arp")
		actions := regexp.MustCompile(`(?m)^Datapath actions: (.*)$`).FindStringSubmatch(trace)
		if actions == nil {
			t.Fatalf("ofproto/trace gives no datapath actions:\n%s", trace)
		}
		// Outputs are the bare numbers among the actions, outside any parentheses.
		depth, tok := 0, ""
		for _, r := range actions[1] + "," {
			switch {
			case r == '(':
				depth++
			case r == ')':
				depth--
			case r == ',' && depth == 0:
				if tok == dpPort[1] {
					return true
				}
				tok = ""
			case depth == 0:
				tok += string(r)
			}
		}
		return false
	}

	add("vpa", 10)
	add("vpb", 10)
	if !floods() {
		t.Errorf("ovs-vswitchd does not flood from vpa to vpb on equal tags 10/10")
	}
	if err := pings(); err != nil {
		t.Fatalf("no ping between equal tags 10/10: %v", err)
	}
	retag("vpb", 20)
	if floods() {
		t.Errorf("ovs-vswitchd floods from vpa (tag 10) to vpb (tag 20)")
	}
	// Real packets as well, over a short window: an extra, the trace above decides.
	if err := exec.Command("ip", "netns", "exec", nsA, "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-w", "3", "10.77.0.2").Run(); err == nil {
		t.Errorf("ping got through between tags 10 and 20")
	}
	// Back on the same VLAN it works again: the failure above was the VLAN, nothing else.
	retag("vpb", 10)
	if !floods() {
		t.Errorf("ovs-vswitchd does not flood from vpa to vpb after retagging to 10/10")
	}
	if err := pings(); err != nil {
		t.Errorf("no ping after retagging to 10/10: %v", err)
	}
}

func TestReconnectAfterDBRestart(t *testing.T) {
	t.Parallel()
	o, c := newOVS(t)
	for _, n := range []string{"vr1", "vr2", "vr3"} {
		addVeth(t, o.NetNS, n, o.NetNS, n+"p", "")
	}
	ctx := testCtx(t)
	if err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "vr1", Tag: 11}); err != nil {
		t.Fatalf("AddAccessPort before restart: %v", err)
	}

	o.RestartDB()
	if err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "vr2", Tag: 12}); err != nil {
		t.Fatalf("AddAccessPort after restart: %v", err)
	}

	// An operation issued while the server is down waits for it within its context: it
	// gets to the wait for a connection without returning, and ends once the server is
	// back.
	o.StopDB()
	waiting := make(chan struct{}, 1)
	c.onWait = func(what string) {
		if what == "connection" {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}
	}
	done := make(chan error, 1)
	go func() { done <- c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "vr3", Tag: 13}) }()
	t.Cleanup(func() { c.Close(); <-done }) // Close ends a call still waiting
	select {
	case err := <-done:
		done <- err
		t.Fatalf("AddAccessPort returned while ovsdb-server was down: %v", err)
	case <-waiting:
	}
	o.StartDB()
	err := <-done
	done <- err
	if err != nil {
		t.Fatalf("AddAccessPort across the outage: %v", err)
	}

	used, err := c.UsedTags(ctx, testBridge)
	if err != nil {
		t.Fatalf("UsedTags: %v", err)
	}
	if !maps.Equal(used, map[int]bool{11: true, 12: true, 13: true}) {
		t.Errorf("UsedTags after restarts = %v, want {11 12 13}", used)
	}
	for n, tag := range map[string]string{"vr1": "11", "vr2": "12", "vr3": "13"} {
		if got := o.Vsctl(t, "get", "Port", n, "tag"); got != tag {
			t.Errorf("port %s tag = %q, want %s", n, got, tag)
		}
	}
}

func BenchmarkAddDeleteAccessPort(b *testing.B) {
	o, c := newOVS(b)
	addVeth(b, o.NetNS, "vb1", o.NetNS, "vb1p", "")
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.AddAccessPort(ctx, AccessPort{Bridge: testBridge, Name: "vb1", Tag: 1 + i%4094}); err != nil {
			b.Fatalf("AddAccessPort: %v", err)
		}
		if err := c.DeletePort(ctx, testBridge, "vb1"); err != nil {
			b.Fatalf("DeletePort: %v", err)
		}
	}
}

// TestCloseWhileDisconnected: Close must not hang in, or leave behind, the reconnect
// loop when the server is gone. Not parallel, so the goroutine count (and the default
// logger) are ours alone.
func TestCloseWhileDisconnected(t *testing.T) {
	o := testutil.StartOVS(t, "")
	o.AddBridge(t, testBridge)
	ctx := testCtx(t)
	// The client's log says when it has noticed the loss and an attempt to reconnect has
	// failed: then it is in its reconnect loop.
	reconnecting := make(chan struct{})
	var once sync.Once
	// (Not passed on to the previous default handler: that one writes through package
	// log, which SetDefault sends back here.)
	prev := slog.Default()
	slog.SetDefault(slog.New(&watchHandler{next: slog.NewTextHandler(os.Stderr, nil), watch: func(r slog.Record) {
		if r.Message == "ovsdb reconnect failed" {
			once.Do(func() { close(reconnecting) })
		}
	}}))
	t.Cleanup(func() { slog.SetDefault(prev) })
	base := runtime.NumGoroutine()

	c, err := Dial(ctx, o.Endpoint)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	closing := false
	t.Cleanup(func() {
		if !closing { // else a Close that hangs is what failed the test
			c.Close()
		}
	})
	if _, err := c.Ports(ctx, testBridge); err != nil {
		t.Fatalf("Ports: %v", err)
	}
	o.StopDB()
	select {
	case <-reconnecting:
	case <-ctx.Done():
		t.Fatal("the client never tried to reconnect after ovsdb-server stopped")
	}

	closed := make(chan struct{})
	start := time.Now()
	closing = true
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
		t.Logf("Close took %v while reconnecting", time.Since(start).Round(time.Microsecond))
	case <-ctx.Done():
		t.Fatalf("Close did not return while ovsdb-server was down:\n%s", stacks())
	}
	if _, err := c.Ports(ctx, testBridge); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Ports after Close: err = %v, want a closed error", err)
	}
	// Close waited for the reconnect loop: none of it runs any more, even once the server
	// is back.
	o.StartDB()
	for _, f := range []string{"ovs.(*Client).supervise", "ovs.(*Client).reconnect", "ovs.(*Client).watch"} {
		if st := stacks(); strings.Contains(st, f) {
			t.Fatalf("%s still runs after Close:\n%s", f, st)
		}
	}
	// libovsdb's goroutines of the lost connection end on their own: wait for them (a
	// leaked one keeps the count up until the test's time is up).
	for runtime.NumGoroutine() > base {
		select {
		case <-ctx.Done():
			t.Fatalf("%d goroutines after Close, %d before Dial:\n%s", runtime.NumGoroutine(), base, stacks())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stacks is every goroutine's stack.
func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// watchHandler shows every record (Debug included) to watch and passes it on to next.
type watchHandler struct {
	next  slog.Handler
	watch func(slog.Record)
}

func (h *watchHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *watchHandler) Handle(ctx context.Context, r slog.Record) error {
	h.watch(r)
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *watchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &watchHandler{next: h.next.WithAttrs(as), watch: h.watch}
}

func (h *watchHandler) WithGroup(name string) slog.Handler {
	return &watchHandler{next: h.next.WithGroup(name), watch: h.watch}
}

// TestDialBurst: many clients connecting at once, as a VM's processes started together
// do, all get their connection. The server is frozen while they connect, as a busy one
// is: its short accept queue fills and turns the rest away (EAGAIN) until it accepts
// again, and Dial waits for its turn.
func TestDialBurst(t *testing.T) {
	o := testutil.StartOVS(t, "")
	const n = 200
	ctx := testCtx(t)
	// The server stays frozen until the burst has really overflowed its queue: a client
	// has been turned away.
	var turnedAway atomic.Int64
	overflowed := make(chan struct{})
	var once sync.Once
	onTurnedAway = func() {
		turnedAway.Add(1)
		once.Do(func() { close(overflowed) })
	}
	t.Cleanup(func() { onTurnedAway = nil })
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the server is resumed (cleanups run last first)
	resume := o.FreezeDB(t)
	errs := make([]error, n)
	gaveUp := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(ctx, o.Endpoint)
			if err != nil {
				errs[i] = err
				gaveUp <- err
				return
			}
			t.Cleanup(c.Close)
		}()
	}
	select {
	case <-overflowed:
	case err := <-gaveUp:
		t.Fatalf("a Dial gave up while ovsdb-server was frozen instead of waiting its turn: %v", err)
	case <-ctx.Done():
		t.Fatalf("no client was turned away while ovsdb-server was frozen: its accept queue took all %d", n)
	}
	resume()
	wg.Wait()
	t.Logf("connection attempts turned away while frozen or just after: %d", turnedAway.Load())
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 3 {
				t.Errorf("client %d: %v", i, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d clients connecting at once got no connection", failed, n)
	}
}
