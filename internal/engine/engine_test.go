package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/probe"
	"github.com/ovn-docker/ovn-docker/internal/state"
	"github.com/ovn-docker/ovn-docker/internal/testutil/scratch"
)

const (
	testVIF    = "0f0e0d0c-0000-4000-8000-0000000000aa"
	testBridge = "br-vm"
	testTrunk  = "trunk-" + testVIF
)

var errBoom = errors.New("boom")

func testNetwork() *neutron.Network {
	return &neutron.Network{ID: "net-1", Name: "blue", MTU: 1442, Subnets: []neutron.Subnet{
		{ID: "sub-4", CIDR: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"), IPVersion: 4, DHCP: true},
		{ID: "sub-6", CIDR: netip.MustParsePrefix("fd00:1::/64"), Gateway: netip.MustParseAddr("fd00:1::1"), IPVersion: 6},
	}}
}

// harness is an engine wired to a fake world and a real state file.
type harness struct {
	w     *world
	store *state.Store
	e     *Engine
	net   *neutron.Network

	// Hooks the engine's Fault and Observe call; set them before Attach.
	onFault   func(step string)
	onObserve func(phase string)
}

func newHarness(t *testing.T, tune ...func(*Config)) *harness {
	t.Helper()
	n := testNetwork()
	h := &harness{w: newWorld(testVIF, testBridge, n), net: n}
	var err error
	if h.store, err = state.Open(filepath.Join(scratch.Dir(t), "state")); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		VIFID: testVIF, Bridge: testBridge, Store: h.store,
		Neutron: fakeNeutron{h.w}, Switch: fakeSwitch{h.w}, Links: fakeLinks{h.w},
		Log: slog.New(slog.DiscardHandler),
		// Not a bound any test relies on: a test whose probe must time out sets its own.
		ReadyTimeout: time.Hour,
		Fault: func(step string) {
			if h.onFault != nil {
				h.onFault(step)
			}
		},
		Observe: func(phase string, _ time.Duration) {
			if h.onObserve != nil {
				h.onObserve(phase)
			}
		},
	}
	for _, f := range tune {
		f(&cfg)
	}
	if h.e, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) request(owner, ifname string) Request {
	return Request{
		Owner: owner, Container: "ctr-" + owner, ContainerName: "web-" + owner, Network: h.net,
		IfName: ifname, NetNS: "/run/netns/" + owner, DefaultRoute: true, SecurityGroups: []string{"sg-1"},
	}
}

func (h *harness) attach(t *testing.T, req Request) *state.Attachment {
	t.Helper()
	att, err := h.e.Attach(context.Background(), req)
	if err != nil {
		t.Fatalf("attach %s/%s: %v", req.Owner, req.IfName, err)
	}
	return att
}

func (h *harness) state(t *testing.T) *state.State {
	t.Helper()
	var out *state.State
	err := h.store.View(context.Background(), func(st *state.State) error {
		out = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertClean fails unless neither the world nor the state keeps anything of ovn-docker's.
func (h *harness) assertClean(t *testing.T) {
	t.Helper()
	if left := h.w.leftovers(); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	st := h.state(t)
	for id, a := range st.Attachments {
		t.Errorf("state keeps attachment %s (phase %s, vlan %d)", id, a.Phase, a.VLAN)
	}
	if used := st.UsedVLANs(); len(used) > 0 {
		t.Errorf("VLANs still held: %v", used)
	}
}

// holdLock takes the state file's lock as another process would; release is idempotent.
func (h *harness) holdLock(t *testing.T) (release func()) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(h.store.Dir(), "state.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
			f.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// subportAfter moves "subport" right after the first step named after.
func subportAfter(steps []string, after string) []string {
	i := slices.Index(steps, "subport")
	if i < 0 {
		return steps
	}
	s := slices.Delete(slices.Clone(steps), i, i+1)
	j := slices.Index(s, after)
	return slices.Insert(s, j+1, "subport")
}

// subportFirst puts the AddSubport calls right after the CreatePort before them: an
// Attach adds the subport while it makes the veth and access port, in either order.
func subportFirst(log []call) []call {
	out := make([]call, 0, len(log))
	var sub []call
	for _, c := range log {
		if c.Name == "neutron.AddSubport" {
			sub = append(sub, c)
		}
	}
	for _, c := range log {
		switch c.Name {
		case "neutron.AddSubport":
			continue
		case "neutron.CreatePort":
			out = append(out, c)
			out = append(out, sub...)
			sub = nil
			continue
		}
		out = append(out, c)
	}
	return append(out, sub...)
}

func wantNames(t *testing.T, what string, got []call, want ...string) {
	t.Helper()
	if g := names(got); !slices.Equal(g, want) {
		t.Errorf("%s calls:\n got  %v\n want %v", what, g, want)
	}
}

func TestNew(t *testing.T) {
	store, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(testVIF, testBridge)
	full := Config{VIFID: testVIF, Bridge: testBridge, Store: store, Neutron: fakeNeutron{w}, Switch: fakeSwitch{w}}
	for name, change := range map[string]func(*Config){
		"no vif":     func(c *Config) { c.VIFID = "" },
		"no bridge":  func(c *Config) { c.Bridge = "" },
		"no store":   func(c *Config) { c.Store = nil },
		"no neutron": func(c *Config) { c.Neutron = nil },
		"no switch":  func(c *Config) { c.Switch = nil },
	} {
		c := full
		change(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	e, err := New(full)
	if err != nil {
		t.Fatal(err)
	}
	got := e.Config()
	if got.Mode != neutron.ModeTrunk || got.ReadyTimeout != 20*time.Second || got.Log == nil {
		t.Errorf("defaults: mode %q, wait %s, log %v", got.Mode, got.ReadyTimeout, got.Log)
	}
	if _, ok := got.Links.(Netlink); !ok {
		t.Errorf("default links %T, want Netlink", got.Links)
	}
}

func TestAttachRejectsBadRequests(t *testing.T) {
	h := newHarness(t)
	good := h.request("o", "eth0")
	for name, change := range map[string]func(*Request){
		"no network":         func(r *Request) { r.Network = nil },
		"network without id": func(r *Request) { r.Network = &neutron.Network{Name: "x"} },
		"no owner":           func(r *Request) { r.Owner = "" },
		"netns, no ifname":   func(r *Request) { r.IfName = "" },
	} {
		r := good
		change(&r)
		if _, err := h.e.Attach(context.Background(), r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if log := h.w.log(); len(log) > 0 {
		t.Errorf("bad requests reached the outside: %v", names(log))
	}
	h.assertClean(t)
}

func TestAttachTrunk(t *testing.T) {
	h := newHarness(t)
	h.w.downPolls = 2 // the data path must be waited for
	req := h.request("sandbox1", "eth1")
	att := h.attach(t, req)
	log := subportFirst(h.w.log())

	wantNames(t, "attach", log, "neutron.EnsureTrunk", "ovs.UsedTags", "neutron.CreatePort", "neutron.AddSubport",
		"links.Create", "ovs.AddAccessPort", "neutron.RouterPortAt", "neutron.Neighbors", "links.Probe") // the static IPv6 subnet: no router, no other port
	if len(log) != 9 {
		t.FailNow()
	}
	if got := log[0].Args[0]; got != testVIF {
		t.Errorf("EnsureTrunk(%v), want the VM's port", got)
	}
	if got := log[1].Args[0]; got != testBridge {
		t.Errorf("UsedTags(%v), want %s", got, testBridge)
	}

	// The Neutron port.
	pr := log[2].Args[0].(neutron.PortRequest)
	wantReq := neutron.PortRequest{NetworkID: "net-1", AttachmentID: att.ID, VIFID: testVIF, Mode: neutron.ModeTrunk,
		VLAN: att.VLAN, SecurityGroups: []string{"sg-1"}}
	if fmt.Sprint(pr) != fmt.Sprint(wantReq) {
		t.Errorf("port request %+v, want %+v", pr, wantReq)
	}
	if len(h.w.created) != 1 || h.w.created[0] != att.PortID {
		t.Fatalf("ports made %v, attachment's port %s", h.w.created, att.PortID)
	}
	port := h.w.ports[att.PortID]
	if port.Name != neutron.PortName(att.ID) || port.Description != neutron.Description(testVIF) || port.DeviceID != "" {
		t.Errorf("port name %q, description %q, device_id %q", port.Name, port.Description, port.DeviceID)
	}

	// The subport.
	if got, want := fmt.Sprint(log[3].Args), fmt.Sprint([]any{testTrunk, att.PortID, att.VLAN}); got != want {
		t.Errorf("AddSubport%s, want %s", got, want)
	}
	if att.VLAN != 1 {
		t.Errorf("first VLAN of an empty VM is %d, want 1", att.VLAN)
	}

	// The veth, with Neutron's addressing.
	host, peer := netdev.HostName(att.PortID), netdev.PeerName(att.PortID)
	spec := log[4].Args[0].(netdev.Spec)
	if spec.HostName != host || spec.PeerName != peer || spec.NetNS != req.NetNS || spec.IfName != "eth1" || spec.MTU != 1442 {
		t.Errorf("spec names/netns/mtu: %+v", spec)
	}
	if spec.MAC.String() != port.MAC.String() {
		t.Errorf("spec MAC %s, Neutron's %s", spec.MAC, port.MAC)
	}
	var addrs []string
	for _, a := range spec.Addrs {
		ones, bits := a.Mask.Size()
		if wantBits := 128; a.IP.To4() != nil {
			wantBits = 32
			if bits != wantBits {
				t.Errorf("address %s: %d-bit mask, want %d", a.IP, bits, wantBits)
			}
		} else if bits != wantBits {
			t.Errorf("address %s: %d-bit mask, want %d", a.IP, bits, wantBits)
		}
		addrs = append(addrs, fmt.Sprintf("%s/%d", a.IP, ones))
	}
	if want := []string{"10.0.0.10/24", "fd00:1::a/64"}; !slices.Equal(addrs, want) {
		t.Errorf("spec addresses %v, want %v", addrs, want)
	}
	var gws []string
	for _, g := range spec.Gateways {
		gws = append(gws, g.String())
	}
	if want := []string{"10.0.0.1", "fd00:1::1"}; !slices.Equal(gws, want) {
		t.Errorf("spec gateways %v, want %v", gws, want)
	}

	// The access port.
	ap := log[5].Args[0].(ovs.AccessPort)
	wantExt := map[string]string{ExtAttachment: att.ID, ExtPort: att.PortID, ExtVLAN: "1", ExtNetwork: "net-1", ExtContainer: "ctr-sandbox1"}
	if ap.Bridge != testBridge || ap.Name != host || ap.Tag != att.VLAN || !maps.Equal(ap.ExternalIDs, wantExt) {
		t.Errorf("access port %+v, want bridge %s name %s tag %d external_ids %v", ap, testBridge, host, att.VLAN, wantExt)
	}
	// The probe, from the container's interface with Neutron's MAC, for Neutron's IPv4.
	if got, want := fmt.Sprint(log[8].Args), fmt.Sprint([]any{req.NetNS, "eth1", port.MAC.String(), "10.0.0.10"}); got != want {
		t.Errorf("Probe%s, want %s", got, want)
	}
	if h.w.downPolls != 0 {
		t.Errorf("the probe returned before the data path was live (%d misses left)", h.w.downPolls)
	}

	// The state.
	st := h.state(t)
	if len(st.Attachments) != 1 || st.Attachments[att.ID] == nil {
		t.Fatalf("state attachments %v, want only %s", slices.Collect(maps.Keys(st.Attachments)), att.ID)
	}
	if st.VIFID != testVIF || st.LastVLAN != 1 {
		t.Errorf("state vif %q last vlan %d", st.VIFID, st.LastVLAN)
	}
	a := st.Attachments[att.ID]
	want := state.Attachment{
		ID: att.ID, Owner: "sandbox1", Container: "ctr-sandbox1", ContainerName: "web-sandbox1", NetworkID: "net-1",
		NetworkName: "blue", IfName: "eth1", NetNS: req.NetNS, VLAN: 1, Mode: "trunk", TrunkID: testTrunk,
		PortID: port.ID, MAC: port.MAC.String(), IPs: []string{"10.0.0.10/24", "fd00:1::a/64"},
		Gateways: []string{"10.0.0.1", "fd00:1::1"}, MTU: 1442, ProbeIP: "10.0.0.10", HostIf: host, PeerIf: peer,
		Phase: state.PhaseAttached, PID: 0, Created: a.Created, Updated: a.Updated,
	}
	if fmt.Sprintf("%+v", *a) != fmt.Sprintf("%+v", want) {
		t.Errorf("state attachment\n got  %+v\n want %+v", *a, want)
	}
	if a.Created.IsZero() || a.Updated.Before(a.Created) {
		t.Errorf("times: created %s updated %s", a.Created, a.Updated)
	}
	if fmt.Sprintf("%+v", *att) != fmt.Sprintf("%+v", *a) {
		t.Errorf("returned attachment differs from the state's:\n %+v\n %+v", *att, *a)
	}

	// The world.
	if v := h.w.trunk.Subports[port.ID]; v != 1 {
		t.Errorf("subport vlan %d", v)
	}
	if v, ok := h.w.veths[host]; !ok || v.peer != peer || v.netns != req.NetNS {
		t.Errorf("veth %s: %+v %v", host, v, ok)
	}
}

func TestAttachWithoutNetNS(t *testing.T) {
	h := newHarness(t)
	req := h.request("endpoint1", "")
	req.NetNS = ""
	att := h.attach(t, req)
	log := subportFirst(h.w.log())
	wantNames(t, "attach", log, "neutron.EnsureTrunk", "ovs.UsedTags", "neutron.CreatePort", "neutron.AddSubport",
		"links.CreatePair", "ovs.AddAccessPort", "neutron.RouterPortAt", "neutron.Neighbors", "links.Probe")
	pair := callsNamed(log, "links.CreatePair")
	if len(pair) != 1 {
		t.FailNow()
	}
	want := []any{netdev.HostName(att.PortID), netdev.PeerName(att.PortID), 1442}
	if fmt.Sprint(pair[0].Args) != fmt.Sprint(want) {
		t.Errorf("CreatePair%v, want %v", pair[0].Args, want)
	}
	if att.Phase != state.PhaseReady || h.state(t).Attachments[att.ID].Phase != state.PhaseReady {
		t.Errorf("phase %s, want ready", att.Phase)
	}
	if err := h.e.Detach(context.Background(), att.ID); err != nil {
		t.Fatal(err)
	}
	h.assertClean(t)
}

func TestAttachWithoutDefaultRoute(t *testing.T) {
	h := newHarness(t)
	req := h.request("o", "eth0")
	req.DefaultRoute = false
	att := h.attach(t, req)
	spec := callsNamed(h.w.log(), "links.Create")[0].Args[0].(netdev.Spec)
	// The attachment keeps the subnets' gateways (Docker's Join hands them over), but
	// the interface gets no default route.
	if len(spec.Gateways) != 0 || len(att.Gateways) != 2 {
		t.Errorf("gateways %v / %v without the default route", spec.Gateways, att.Gateways)
	}
	if len(spec.Addrs) != 2 {
		t.Errorf("addresses %v", spec.Addrs)
	}
}

func TestAttachBindingProfile(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Mode = neutron.ModeBindingProfile })
	att := h.attach(t, h.request("o", "eth0"))
	log := h.w.log()
	// The parent's host is read once (binding-profile ports are bound there), the VLANs of
	// a trunk the port may have are avoided, and no trunk is made.
	wantNames(t, "attach", log, "neutron.TrunkOf", "ovs.UsedTags", "neutron.GetPort", "neutron.CreatePort", "links.Create", "ovs.AddAccessPort", "neutron.RouterPortAt", "neutron.Neighbors", "links.Probe")
	pr := callsNamed(log, "neutron.CreatePort")[0].Args[0].(neutron.PortRequest)
	if pr.Mode != neutron.ModeBindingProfile || pr.VLAN != att.VLAN || pr.VLAN != 1 || pr.VIFID != testVIF || pr.HostID != testHost {
		t.Errorf("port request %+v, want binding-profile, vlan %d, parent %s", pr, att.VLAN, testVIF)
	}
	if att.TrunkID != "" || att.Mode != string(neutron.ModeBindingProfile) {
		t.Errorf("attachment trunk %q mode %q", att.TrunkID, att.Mode)
	}
	if h.w.trunk != nil {
		t.Error("binding-profile mode made a trunk")
	}
	h.w.reset()
	if err := h.e.Detach(context.Background(), att.ID); err != nil {
		t.Fatal(err)
	}
	wantNames(t, "detach", h.w.log(), "ovs.DeletePort", "links.Delete", "neutron.DeletePort")
	h.assertClean(t)
}

// lockedState makes the next state write fail as if another process held the lock
// until the caller gave up, then lets the rollback have it: the lock is released when
// the engine makes its next call outside, the rollback's first, which comes only after
// the write has failed.
func lockedState(t *testing.T, h *harness, cancel context.CancelFunc) {
	release := h.holdLock(t)
	cancel()
	h.w.onNext(release)
}

// waitLockWaiter returns once a process waits in the kernel for the flock on path (a
// "->" line of /proc/locks), or false when ctx ends first.
func waitLockWaiter(ctx context.Context, path string) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	for {
		b, _ := os.ReadFile("/proc/locks")
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 7 && f[1] == "->" && f[2] == "FLOCK" && f[6] == id {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Millisecond):
		}
	}
}

func TestAttachFailureRollsBack(t *testing.T) {
	timeout := fmt.Errorf("request timed out: %w", context.DeadlineExceeded)
	cases := []struct {
		name  string
		setup func(t *testing.T, h *harness, cancel context.CancelFunc)
		want  string // in the error
		is    error  // wrapped by the error
	}{
		{"trunk", func(t *testing.T, h *harness, _ context.CancelFunc) { h.w.failAt("neutron.EnsureTrunk", 1, errBoom) },
			"the VM's port " + testVIF, errBoom},
		{"bridge tags", func(t *testing.T, h *harness, _ context.CancelFunc) { h.w.failAt("ovs.UsedTags", 1, errBoom) },
			"VLANs in use on " + testBridge, errBoom},
		{"create port", func(t *testing.T, h *harness, _ context.CancelFunc) { h.w.failAt("neutron.CreatePort", 1, errBoom) },
			"neutron port", errBoom},
		{"create port made it", func(t *testing.T, h *harness, _ context.CancelFunc) {
			h.w.failAfter("neutron.CreatePort", 1, timeout)
		}, "neutron port", context.DeadlineExceeded},
		{"subport", func(t *testing.T, h *harness, _ context.CancelFunc) { h.w.failAt("neutron.AddSubport", 1, errBoom) },
			"subport", errBoom},
		{"subport made it", func(t *testing.T, h *harness, _ context.CancelFunc) {
			h.w.failAfter("neutron.AddSubport", 1, timeout)
		}, "subport", context.DeadlineExceeded},
		{"subport vlan always taken", func(t *testing.T, h *harness, _ context.CancelFunc) {
			h.w.failAt("neutron.AddSubport", 0, neutron.ErrVLANInUse)
		}, "subport", neutron.ErrVLANInUse},
		{"veth", func(t *testing.T, h *harness, _ context.CancelFunc) { h.w.failAt("links.Create", 1, errBoom) },
			"veth for eth0", errBoom},
		{"veth made it", func(t *testing.T, h *harness, _ context.CancelFunc) { h.w.failAfter("links.Create", 1, errBoom) },
			"veth for eth0", errBoom},
		{"access port", func(t *testing.T, h *harness, _ context.CancelFunc) { h.w.failAt("ovs.AddAccessPort", 1, errBoom) },
			"access port", errBoom},
		{"access port made it", func(t *testing.T, h *harness, _ context.CancelFunc) {
			h.w.failAfter("ovs.AddAccessPort", 1, timeout)
		}, "access port", context.DeadlineExceeded},
		{"never active", func(t *testing.T, h *harness, _ context.CancelFunc) { h.w.inactive = true },
			"is not live after 300ms", probe.ErrNoAnswer},
		{"probe fails", func(t *testing.T, h *harness, _ context.CancelFunc) { h.w.failAt("links.Probe", 0, errBoom) },
			"is not live after 300ms (boom)", nil},
		{"state of another vm", func(t *testing.T, h *harness, _ context.CancelFunc) {
			if err := h.store.Update(context.Background(), func(st *state.State) error { st.VIFID = "other-vm"; return nil }); err != nil {
				t.Fatal(err)
			}
		}, "belongs to the VM with port other-vm", nil},
		{"attachment removed from the state", func(t *testing.T, h *harness, _ context.CancelFunc) {
			h.onFault = func(step string) {
				if step != "port" {
					return
				}
				err := h.store.Update(context.Background(), func(st *state.State) error {
					clear(st.Attachments)
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		}, "vanished from the state", nil},
		{"state locked when the port is recorded", func(t *testing.T, h *harness, cancel context.CancelFunc) {
			// The port is made, then recording it finds the state locked, and waits
			// for it in the kernel until the caller gives up: the rollback must still
			// delete the port. The lock is free again from the rollback's first call.
			h.w.onCall("neutron.CreatePort", 1, func() {
				release := h.holdLock(t)
				h.w.onNext(release)
				waited := make(chan struct{})
				go func() {
					defer close(waited)
					if waitLockWaiter(t.Context(), filepath.Join(h.store.Dir(), "state.lock")) {
						cancel()
					}
				}()
				t.Cleanup(func() { <-waited })
			})
		}, "lock state", context.Canceled},
		{"state locked at the end", func(t *testing.T, h *harness, cancel context.CancelFunc) {
			h.onObserve = func(phase string) {
				if phase == "ready" {
					lockedState(t, h, cancel)
				}
			}
		}, "lock state", context.Canceled},
	}
	// The cases whose data path never answers wait for ReadyTimeout; in the others the
	// probe, if it comes to it, must succeed.
	probeFails := map[string]bool{"never active": true, "probe fails": true}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				if probeFails[tc.name] {
					c.ReadyTimeout = 300 * time.Millisecond
				}
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tc.setup(t, h, cancel)
			att, err := h.e.Attach(ctx, h.request("o", "eth0"))
			if err == nil {
				t.Fatalf("attach succeeded: %+v", att)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the step (%q)", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
			if strings.Contains(err.Error(), "rollback failed") {
				t.Errorf("rollback failed: %v", err)
			}
			h.assertClean(t)
			if t.Failed() {
				t.Logf("calls: %v", names(h.w.log()))
			}
		})
	}
}

func TestAttachFindsOrphanPort(t *testing.T) {
	h := newHarness(t)
	h.w.failAfter("neutron.CreatePort", 1, fmt.Errorf("post ports: %w", context.DeadlineExceeded))
	if _, err := h.e.Attach(context.Background(), h.request("o", "eth0")); err == nil {
		t.Fatal("attach succeeded")
	}
	log := h.w.log()
	attID := callsNamed(log, "neutron.CreatePort")[0].Args[0].(neutron.PortRequest).AttachmentID
	if len(h.w.created) != 1 {
		t.Fatalf("ports made: %v", h.w.created)
	}
	orphan := h.w.created[0]
	wantNames(t, "attach", log, "neutron.EnsureTrunk", "ovs.UsedTags", "neutron.CreatePort",
		"neutron.PortByAttachment", "neutron.DeletePort")
	if got := callsNamed(log, "neutron.PortByAttachment"); len(got) != 1 || fmt.Sprint(got[0].Args) != fmt.Sprint([]any{testVIF, attID}) {
		t.Errorf("PortByAttachment calls %v, want (%s, %s)", got, testVIF, attID)
	}
	if got := callsNamed(log, "neutron.DeletePort"); len(got) != 1 || got[0].Args[0] != orphan {
		t.Errorf("DeletePort calls %v, want the orphan %s", got, orphan)
	}
	h.assertClean(t)
}

func TestAttachVLANTakenOnTrunk(t *testing.T) {
	h := newHarness(t)
	// Someone adds subports with VLANs 1 and 2 between EnsureTrunk and AddSubport, and
	// the bridge has a port of someone else's with tag 3.
	h.w.addedBehind = map[string]int{"foreign-port": 1, "foreign-port2": 2}
	h.w.ovsPorts["foreign-p3"] = ovs.AccessPort{Bridge: testBridge, Name: "foreign-p3", Tag: 3}
	att := h.attach(t, h.request("o", "eth0"))
	if att.VLAN != 4 {
		t.Errorf("VLAN %d, want 4 (1 and 2 taken on the trunk, 3 on the bridge)", att.VLAN)
	}
	log := h.w.log()
	var tried []int
	for _, c := range callsNamed(log, "neutron.AddSubport") {
		tried = append(tried, c.Args[2].(int))
	}
	if !slices.Equal(tried, []int{1, 4}) {
		t.Errorf("AddSubport VLANs %v, want [1 4]", tried)
	}
	st := h.state(t)
	if a := st.Attachments[att.ID]; a == nil || a.VLAN != 4 || st.LastVLAN != 4 {
		t.Errorf("state attachment %+v, last vlan %d", a, st.LastVLAN)
	}
	// The access port was made with the first VLAN while Neutron refused it, then
	// moved to the one the trunk took.
	aps := callsNamed(log, "ovs.AddAccessPort")
	ap := aps[len(aps)-1].Args[0].(ovs.AccessPort)
	if ap.Tag != 4 || ap.ExternalIDs[ExtVLAN] != "4" || h.w.ovsPorts[ap.Name].Tag != 4 {
		t.Errorf("access port tag %d, external vlan %q; want 4", ap.Tag, ap.ExternalIDs[ExtVLAN])
	}
	if h.w.trunk.Subports[att.PortID] != 4 || h.w.trunk.Subports["foreign-port"] != 1 {
		t.Errorf("trunk subports %v", h.w.trunk.Subports)
	}
	if err := h.e.Detach(context.Background(), att.ID); err != nil {
		t.Fatal(err)
	}
	h.assertClean(t)
	if h.w.trunk.Subports["foreign-port"] != 1 || h.w.ovsPorts["foreign-p3"].Tag != 3 {
		t.Error("detach touched someone else's subport or port")
	}
}

func TestVLANChoiceAvoidsUsed(t *testing.T) {
	cases := []struct {
		name                   string
		inState, bridge, trunk []int
		want                   int
	}{
		{"empty", nil, nil, nil, 1},
		{"state", []int{1}, nil, nil, 2},
		{"bridge", nil, []int{1}, nil, 2},
		{"trunk", nil, nil, []int{1}, 2},
		{"all", []int{1, 4}, []int{2, 5}, []int{3, 6}, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			err := h.store.Update(context.Background(), func(st *state.State) error {
				for _, v := range tc.inState {
					id := fmt.Sprintf("old%d", v)
					st.Attachments[id] = &state.Attachment{ID: id, Owner: "old", VLAN: v, Phase: state.PhaseAttached}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tc.bridge {
				name := fmt.Sprintf("foreign%d", v)
				h.w.ovsPorts[name] = ovs.AccessPort{Bridge: testBridge, Name: name, Tag: v}
			}
			if tc.trunk != nil {
				h.w.trunk = &neutron.Trunk{ID: testTrunk, ParentID: testVIF, Subports: map[string]int{}}
				for _, v := range tc.trunk {
					h.w.trunk.Subports[fmt.Sprintf("foreign%d", v)] = v
				}
			}
			att := h.attach(t, h.request("o", "eth0"))
			if att.VLAN != tc.want {
				t.Errorf("VLAN %d, want %d", att.VLAN, tc.want)
			}
			if tried := callsNamed(h.w.log(), "neutron.AddSubport"); len(tried) != 1 {
				t.Errorf("%d AddSubport calls: the first choice should have been free", len(tried))
			}
		})
	}
}

func TestVLANNotReusedRightAway(t *testing.T) {
	h := newHarness(t)
	var got []int
	for i := range 3 {
		att := h.attach(t, h.request(fmt.Sprint("o", i), "eth0"))
		got = append(got, att.VLAN)
		if err := h.e.Detach(context.Background(), att.ID); err != nil {
			t.Fatal(err)
		}
	}
	// A failed attach uses up its VLAN too.
	h.w.reset()
	h.w.failAt("links.Create", 1, errBoom)
	if _, err := h.e.Attach(context.Background(), h.request("failing", "eth0")); err == nil {
		t.Fatal("attach succeeded")
	}
	att := h.attach(t, h.request("last", "eth0"))
	got = append(got, att.VLAN)
	if want := []int{1, 2, 3, 5}; !slices.Equal(got, want) {
		t.Errorf("VLANs of consecutive attaches %v, want %v", got, want)
	}
}

func TestDetach(t *testing.T) {
	h := newHarness(t)
	att := h.attach(t, h.request("o", "eth0"))
	h.w.reset()
	var steps []string
	h.onFault = func(step string) {
		steps = append(steps, step)
		a := h.state(t).Attachments[att.ID]
		if a == nil {
			t.Errorf("attachment gone from the state at %s, before the outside was cleaned", step)
		} else if a.Phase != state.PhaseDetaching {
			t.Errorf("phase %s at %s, want detaching", a.Phase, step)
		}
	}
	if err := h.e.Detach(context.Background(), att.ID); err != nil {
		t.Fatal(err)
	}
	log := h.w.log()
	wantNames(t, "detach", log, "ovs.DeletePort", "links.Delete", "neutron.RemoveSubport", "neutron.DeletePort")
	want := [][]any{{testBridge, att.HostIf}, {att.HostIf}, {testTrunk, att.PortID}, {att.PortID}}
	for i, c := range log {
		if i < len(want) && fmt.Sprint(c.Args) != fmt.Sprint(want[i]) {
			t.Errorf("%s%v, want %v", c.Name, c.Args, want[i])
		}
	}
	if wantSteps := []string{"detach-ovs", "detach-veth", "detach-subport", "detach-port"}; !slices.Equal(steps, wantSteps) {
		t.Errorf("fault steps %v, want %v", steps, wantSteps)
	}
	h.assertClean(t)

	h.onFault = nil
	h.w.reset()
	if err := h.e.Detach(context.Background(), att.ID); err != nil {
		t.Errorf("second detach: %v", err)
	}
	if err := h.e.Detach(context.Background(), "no-such-attachment"); err != nil {
		t.Errorf("detach of an unknown attachment: %v", err)
	}
	if log := h.w.log(); len(log) > 0 {
		t.Errorf("detach of nothing called %v", names(log))
	}
}

func TestDetachFailsMidway(t *testing.T) {
	for step, want := range map[string]string{
		"ovs.DeletePort":        "delete access port odv",
		"links.Delete":          "delete veth odv",
		"neutron.RemoveSubport": "remove subport",
		"neutron.DeletePort":    "delete neutron port",
	} {
		t.Run(step, func(t *testing.T) {
			h := newHarness(t)
			att := h.attach(t, h.request("o", "eth0"))
			h.w.reset()
			h.w.failAt(step, 1, errBoom)
			err := h.e.Detach(context.Background(), att.ID)
			if !errors.Is(err, errBoom) {
				t.Fatalf("detach: %v, want %v", err, errBoom)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name the step (%q)", err, want)
			}
			a := h.state(t).Attachments[att.ID]
			if a == nil {
				t.Fatal("a failed detach dropped the attachment from the state")
			}
			if !strings.Contains(a.Error, "boom") || a.PID != 0 || a.Phase != state.PhaseDetaching {
				t.Errorf("after a failed detach: error %q, pid %d, phase %s", a.Error, a.PID, a.Phase)
			}
			if left := h.w.leftovers(); len(left) == 0 {
				t.Error("nothing left: the failure was not midway")
			}
			if err := h.e.Detach(context.Background(), att.ID); err != nil {
				t.Fatalf("second detach: %v", err)
			}
			h.assertClean(t)
		})
	}
}

func TestDetachPortUnknownToState(t *testing.T) {
	// A run that died between CreatePort and recording the port's ID.
	h := newHarness(t)
	now := time.Now().UTC()
	a := &state.Attachment{ID: "a1b2c3d4e5f6", Owner: "o", NetworkID: "net-1", VLAN: 9, Mode: "trunk",
		Phase: state.PhasePort, PID: 0, Created: now, Updated: now}
	err := h.store.Update(context.Background(), func(st *state.State) error {
		st.Attachments[a.ID] = a
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (fakeNeutron{h.w}).CreatePort(context.Background(), neutron.PortRequest{
		NetworkID: "net-1", AttachmentID: a.ID, VIFID: testVIF, Mode: neutron.ModeTrunk}); err != nil {
		t.Fatal(err)
	}
	h.w.reset()
	if err := h.e.Detach(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	wantNames(t, "detach", h.w.log(), "neutron.PortByAttachment", "neutron.DeletePort")
	h.assertClean(t)
}

func TestAttachSameInterfaceTwice(t *testing.T) {
	h := newHarness(t)
	first := h.attach(t, h.request("o", "eth0"))
	before := h.w.leftovers()
	h.w.reset()
	_, err := h.e.Attach(context.Background(), h.request("o", "eth0"))
	if err == nil || !strings.Contains(err.Error(), "already attached") || !strings.Contains(err.Error(), first.ID) {
		t.Fatalf("second attach of o/eth0: %v", err)
	}
	for _, c := range h.w.log() {
		if c.Name != "neutron.EnsureTrunk" && c.Name != "ovs.UsedTags" {
			t.Errorf("refused attach still called %s", c.Name)
		}
	}
	if after := h.w.leftovers(); !slices.Equal(before, after) {
		t.Errorf("world changed:\n before %v\n after  %v", before, after)
	}
	if n := len(h.state(t).Attachments); n != 1 {
		t.Errorf("%d attachments in the state, want 1", n)
	}
	// Another interface of the owner, and the same name for another owner, are fine.
	h.attach(t, h.request("o", "eth1"))
	h.attach(t, h.request("p", "eth0"))
}

func TestConcurrentAttach(t *testing.T) {
	const n = 50
	h := newHarness(t)
	atts := make([]*state.Attachment, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			atts[i], errs[i] = h.e.Attach(context.Background(), h.request(fmt.Sprint("owner", i), "eth0"))
		})
	}
	wg.Wait()
	vlans := map[int]string{}
	for i, a := range atts {
		if errs[i] != nil {
			t.Fatalf("attach %d: %v", i, errs[i])
		}
		if other, dup := vlans[a.VLAN]; dup {
			t.Errorf("VLAN %d given to %s and %s", a.VLAN, other, a.ID)
		}
		vlans[a.VLAN] = a.ID
		// The outside agrees with the state.
		if v := h.w.trunk.Subports[a.PortID]; v != a.VLAN {
			t.Errorf("%s: subport vlan %d, state %d", a.ID, v, a.VLAN)
		}
		if p := h.w.ovsPorts[a.HostIf]; p.Tag != a.VLAN {
			t.Errorf("%s: access port tag %d, state %d", a.ID, p.Tag, a.VLAN)
		}
	}
	if len(vlans) != n || len(h.state(t).Attachments) != n || len(h.w.ports) != n || len(h.w.veths) != n {
		t.Errorf("%d VLANs, %d attachments, %d ports, %d veths; want %d of each",
			len(vlans), len(h.state(t).Attachments), len(h.w.ports), len(h.w.veths), n)
	}
	for _, a := range atts {
		wg.Go(func() {
			if err := h.e.Detach(context.Background(), a.ID); err != nil {
				t.Errorf("detach %s: %v", a.ID, err)
			}
		})
	}
	wg.Wait()
	h.assertClean(t)
}

func TestFaultAndObserveSteps(t *testing.T) {
	for _, tc := range []struct {
		mode          neutron.Mode
		netns         string
		faults, phase []string
	}{
		{neutron.ModeTrunk, "/run/netns/x",
			[]string{"reserved", "port", "subport", "veth", "ovs", "attached", "detach-ovs", "detach-veth", "detach-subport", "detach-port"},
			[]string{"trunk", "reserve", "port", "subport", "plumb", "ready"}},
		{neutron.ModeBindingProfile, "",
			[]string{"reserved", "port", "veth", "ovs", "attached", "detach-ovs", "detach-veth", "detach-port"},
			[]string{"trunk", "reserve", "port", "plumb", "ready"}},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Mode = tc.mode })
			var mu sync.Mutex
			var faults, phases []string
			h.onFault = func(s string) { mu.Lock(); faults = append(faults, s); mu.Unlock() }
			h.onObserve = func(p string) { mu.Lock(); phases = append(phases, p); mu.Unlock() }
			req := h.request("o", "eth0")
			req.NetNS = tc.netns
			att := h.attach(t, req)
			if err := h.e.Detach(context.Background(), att.ID); err != nil {
				t.Fatal(err)
			}
			// The subport is added while the veth and access port are made: its step may
			// come anywhere between the port and the end.
			faults, phases = subportAfter(faults, "port"), subportAfter(phases, "port")
			if !slices.Equal(faults, tc.faults) {
				t.Errorf("fault steps\n got  %v\n want %v", faults, tc.faults)
			}
			if !slices.Equal(phases, tc.phase) {
				t.Errorf("observed phases\n got  %v\n want %v", phases, tc.phase)
			}
		})
	}
}

// deadPID returns the ID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestFaultKillsAndRecoverFinishes(t *testing.T) {
	// A process that dies after any step leaves an attachment that Recover, in a later
	// process, removes with everything it made. panic stands in for the kill: no
	// rollback runs.
	for _, step := range []string{"reserved", "port", "subport", "veth", "ovs", "detach-ovs", "detach-veth", "detach-subport", "detach-port"} {
		t.Run(step, func(t *testing.T) {
			h := newHarness(t)
			h.onFault = func(s string) {
				if s == step {
					panic("killed")
				}
			}
			func() {
				defer func() {
					if r := recover(); r != "killed" {
						t.Fatalf("recovered %v", r)
					}
				}()
				att, err := h.e.Attach(context.Background(), h.request("o", "eth0"))
				if err != nil {
					t.Fatal(err)
				}
				_ = h.e.Detach(context.Background(), att.ID)
			}()
			h.onFault = nil

			// The attachment of a live process, and attachments at rest, are not Recover's.
			n, err := h.e.Recover(context.Background())
			if err != nil || n != 0 {
				t.Fatalf("recover while the process lives: %d, %v", n, err)
			}
			rest := h.attach(t, h.request("o", "eth1"))
			ready := h.request("o", "")
			ready.NetNS = ""
			h.attach(t, ready)
			h.w.reset()

			dead := deadPID(t)
			var id string
			err = h.store.Update(context.Background(), func(st *state.State) error {
				for _, a := range st.Attachments {
					if a.PID != 0 {
						a.PID, id = dead, a.ID
					}
				}
				return nil
			})
			if err != nil || id == "" {
				t.Fatalf("no interrupted attachment after a kill at %s (%v)", step, err)
			}
			n, err = h.e.Recover(context.Background())
			if err != nil || n != 1 {
				t.Fatalf("recover: %d, %v", n, err)
			}
			st := h.state(t)
			if st.Attachments[id] != nil || len(st.Attachments) != 2 || st.Attachments[rest.ID] == nil {
				t.Errorf("after recover the state holds %v", slices.Collect(maps.Keys(st.Attachments)))
			}
			for _, c := range h.w.log() {
				if slices.Contains(c.Args, any(rest.HostIf)) || slices.Contains(c.Args, any(rest.PortID)) {
					t.Errorf("recover touched an attachment at rest: %s%v", c.Name, c.Args)
				}
			}
			for _, a := range st.Attachments {
				if err := h.e.Detach(context.Background(), a.ID); err != nil {
					t.Fatal(err)
				}
			}
			h.assertClean(t)
		})
	}
}

func TestRollbackFailureIsRecorded(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ReadyTimeout = 100 * time.Millisecond })
	h.w.inactive = true
	h.w.failAt("links.Delete", 1, errBoom)
	_, err := h.e.Attach(context.Background(), h.request("o", "eth0"))
	if err == nil || !strings.Contains(err.Error(), "is not live") || !strings.Contains(err.Error(), "rollback failed") {
		t.Fatalf("attach: %v", err)
	}
	st := h.state(t)
	if len(st.Attachments) != 1 {
		t.Fatalf("%d attachments after a failed rollback, want the one to clean up", len(st.Attachments))
	}
	for _, a := range st.Attachments {
		if !strings.Contains(a.Error, "boom") || a.PID != 0 {
			t.Errorf("attachment after a failed rollback: error %q, pid %d", a.Error, a.PID)
		}
		if err := h.e.Detach(context.Background(), a.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.assertClean(t)
}

func TestLabel(t *testing.T) {
	h := newHarness(t)
	att := h.attach(t, h.request("o", "eth0"))
	const cid = "0123456789abcdef0123"
	if err := h.e.Label(context.Background(), att.ID, cid, "db"); err != nil {
		t.Fatal(err)
	}
	a := h.state(t).Attachments[att.ID]
	if a.Container != cid || a.ContainerName != "db" {
		t.Errorf("state container %q name %q", a.Container, a.ContainerName)
	}
	want := []string{neutron.Tag, neutron.TagVM + testVIF, neutron.TagContainer + "0123456789ab"}
	if got := h.w.ports[att.PortID].Tags; !slices.Equal(got, want) {
		t.Errorf("port tags %v, want %v", got, want)
	}
	if err := h.e.Label(context.Background(), "nope", cid, "db"); err == nil {
		t.Error("label of an unknown attachment succeeded")
	}
	list, err := h.e.Attachments(context.Background())
	if err != nil || len(list) != 1 || list[0].ID != att.ID {
		t.Errorf("Attachments: %v %v", list, err)
	}
}

func TestFillFromPort(t *testing.T) {
	n := &neutron.Network{ID: "n", Subnets: []neutron.Subnet{
		{ID: "a", CIDR: netip.MustParsePrefix("10.1.0.0/16"), Gateway: netip.MustParseAddr("10.1.0.1"), IPVersion: 4},
		{ID: "b", CIDR: netip.MustParsePrefix("10.2.0.0/24"), Gateway: netip.MustParseAddr("10.2.0.1"), IPVersion: 4},
		{ID: "c", CIDR: netip.MustParsePrefix("fd00::/64"), IPVersion: 6}, // no gateway
	}}
	p := &neutron.Port{ID: "p", MAC: net.HardwareAddr{0xfa, 0x16, 0x3e, 1, 2, 3}, FixedIPs: []neutron.FixedIP{
		{SubnetID: "a", IP: netip.MustParseAddr("10.1.2.3")},
		{SubnetID: "b", IP: netip.MustParseAddr("10.2.0.9")},
		{SubnetID: "c", IP: netip.MustParseAddr("fd00::9")},
		{SubnetID: "unknown", IP: netip.MustParseAddr("192.0.2.1")},
		{SubnetID: "unknown6", IP: netip.MustParseAddr("2001:db8::1")},
	}}
	var a state.Attachment
	fillFromPort(&a, p, n)
	if want := []string{"10.1.2.3/16", "10.2.0.9/24", "fd00::9/64", "192.0.2.1/32", "2001:db8::1/128"}; !slices.Equal(a.IPs, want) {
		t.Errorf("IPs %v, want %v", a.IPs, want)
	}
	// One gateway per family: the first subnet's.
	if want := []string{"10.1.0.1"}; !slices.Equal(a.Gateways, want) {
		t.Errorf("gateways %v, want %v", a.Gateways, want)
	}
	if a.PortID != "p" || a.MAC != "fa:16:3e:01:02:03" {
		t.Errorf("port %q mac %q", a.PortID, a.MAC)
	}
	a.HostIf, a.PeerIf, a.IfName = "odvx", "odcx", "eth0"
	s := specOf(&a, "/run/netns/x", true)
	if len(s.Addrs) != 5 || s.MAC.String() != a.MAC || s.NetNS != "/run/netns/x" || len(s.Gateways) != 1 {
		t.Errorf("spec %+v", s)
	}
	// Without the default route the interface gets no gateway.
	if s := specOf(&a, "/run/netns/x", false); len(s.Gateways) != 0 || len(s.Addrs) != 5 {
		t.Errorf("spec without default route %+v", s)
	}
}

func TestNetworkOfAnotherProjectIsRefused(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.VIFProject = "project-a" })
	other := *h.net
	other.ProjectID = "project-b"
	req := h.request("o", "eth0")
	req.Network = &other
	_, err := h.e.Attach(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "project-b") || !strings.Contains(err.Error(), "shared") {
		t.Fatalf("attach to another project's network: %v", err)
	}
	if _, err := h.e.PrepareBatch(context.Background(), req, 2); err == nil {
		t.Fatal("a batch for another project's network was made")
	}
	if log := h.w.log(); len(log) > 0 {
		t.Fatalf("the refusal reached the outside: %v", names(log))
	}
	// A shared network of another project, and one of the VM's own, are fine.
	other.Shared = true
	att := h.attach(t, req)
	mine := *h.net
	mine.ProjectID = "project-a"
	req2 := h.request("o", "eth1")
	req2.Network = &mine
	att2 := h.attach(t, req2)
	for _, a := range []*state.Attachment{att, att2} {
		if err := h.e.Detach(context.Background(), a.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.assertClean(t)
}

// A Neutron that hangs does not hold a failed attach past RollbackTimeout, and what the
// rollback could not undo is still recorded for gc, although its context ran out.
func TestRollbackIsBounded(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.ReadyTimeout = 100 * time.Millisecond
		c.RollbackTimeout = 200 * time.Millisecond
	})
	h.w.inactive = true
	// Neutron never answers the rollback's port deletion: only RollbackTimeout ends it.
	h.w.hangAt("neutron.DeletePort", 1)
	_, err := h.e.Attach(context.Background(), h.request("o", "eth0"))
	if err == nil || !strings.Contains(err.Error(), "rollback failed") || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("attach: %v", err)
	}
	st := h.state(t)
	if len(st.Attachments) != 1 {
		t.Fatalf("%d attachments after a rollback that ran out of time, want the one to clean up", len(st.Attachments))
	}
	for _, a := range st.Attachments {
		if a.Error == "" || a.PID != 0 {
			t.Errorf("attachment after the rollback ran out: error %q, pid %d", a.Error, a.PID)
		}
		if err := h.e.Detach(context.Background(), a.ID); err != nil {
			t.Fatal(err)
		}
	}
	h.assertClean(t)
}

// A trunk the caller kept from an earlier process saves reading it; one that is gone is
// found out by add_subports, made again, and reported to the caller.
func TestTrunkHint(t *testing.T) {
	var told []string
	h := newHarness(t, func(c *Config) {
		c.TrunkID = testTrunk
		c.OnTrunk = func(id string) { told = append(told, id) }
	})
	// The trunk exists as the hint says.
	fn := fakeNeutron{h.w}
	if _, err := fn.EnsureTrunk(context.Background(), testVIF); err != nil {
		t.Fatal(err)
	}
	h.w.reset()
	h.attach(t, h.request("sandbox1", "eth0"))
	reads := len(callsNamed(h.w.log(), "neutron.EnsureTrunk")) + len(callsNamed(h.w.log(), "neutron.TrunkOf"))
	if reads != 0 {
		t.Fatalf("the trunk was read %d times with a hint", reads)
	}
	if len(told) != 0 {
		t.Fatalf("told of trunks %v without reading one", told)
	}

	// The hint is stale: the trunk was deleted and is made again.
	h2 := newHarness(t, func(c *Config) {
		c.TrunkID = "gone-trunk"
		c.OnTrunk = func(id string) { told = append(told, id) }
	})
	att := h2.attach(t, h2.request("sandbox2", "eth0"))
	if h2.w.trunk == nil || att.TrunkID != h2.w.trunk.ID || h2.w.trunk.Subports[att.PortID] != att.VLAN {
		t.Fatalf("attachment on trunk %q, the VM's trunk %+v", att.TrunkID, h2.w.trunk)
	}
	if len(told) != 1 || told[0] != h2.w.trunk.ID {
		t.Fatalf("told %v, want the new trunk %s", told, h2.w.trunk.ID)
	}
}

// DeleteOrphanPorts deletes the VM's ports on the network that no attachment records,
// at once, and leaves the ports of attachments and of other networks.
func TestDeleteOrphanPorts(t *testing.T) {
	h := newHarness(t)
	other := &neutron.Network{ID: "net-other", Name: "other", MTU: 1442,
		Subnets: []neutron.Subnet{{ID: "sub-other", CIDR: netip.MustParsePrefix("10.9.0.0/24"), IPVersion: 4}}}
	h.w.networks[other.ID] = other
	att := h.attach(t, h.request("o", "eth0"))
	// Ports Neutron made for requests whose processes died: no attachment records them.
	ctx := context.Background()
	fn := fakeNeutron{h.w}
	orphan, err := fn.CreatePort(ctx, neutron.PortRequest{NetworkID: h.net.ID, AttachmentID: "dead00000001", VIFID: testVIF})
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := fn.CreatePort(ctx, neutron.PortRequest{NetworkID: other.ID, AttachmentID: "dead00000002", VIFID: testVIF})
	if err != nil {
		t.Fatal(err)
	}
	n, err := h.e.DeleteOrphanPorts(ctx, h.net.ID)
	if err != nil || n != 1 {
		t.Fatalf("DeleteOrphanPorts: %d, %v; want 1 deleted", n, err)
	}
	h.w.mu.Lock()
	_, orphanLeft := h.w.ports[orphan.ID]
	_, attLeft := h.w.ports[att.PortID]
	_, elsewhereLeft := h.w.ports[elsewhere.ID]
	h.w.mu.Unlock()
	if orphanLeft || !attLeft || !elsewhereLeft {
		t.Fatalf("after: orphan left %v, the attachment's port left %v, the other network's orphan left %v; want false, true, true",
			orphanLeft, attLeft, elsewhereLeft)
	}
	if n, err := h.e.DeleteOrphanPorts(ctx, h.net.ID); err != nil || n != 0 {
		t.Fatalf("again: %d, %v; want nothing to delete", n, err)
	}
}
