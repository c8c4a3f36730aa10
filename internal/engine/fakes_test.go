package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/netdev"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/probe"
	"github.com/ovn-docker/ovn-docker/internal/vlan"
)

// call is one call the engine made to the outside world.
type call struct {
	Name string // "neutron.CreatePort", "ovs.AddAccessPort", "links.Create"...
	Args []any
}

// rule makes one call fail.
type rule struct {
	call  string
	nth   int   // which occurrence of the call, from 1; 0: every one
	err   error // returned by the call; nil: the call goes on (do only)
	after bool  // the call does its work before failing, as a timed-out request may
	do    func()
	hang  bool // the call waits until its context ends, as a request to a server that hangs
}

// world is everything outside the engine: Neutron's ports and the VM's trunk, the VM's
// bridge and its links. The three fakes share it, so one log holds every call in order.
// It is as strict as the real systems where that exposes engine mistakes: a port that is
// still a subport cannot be deleted, an access port needs its device.
type world struct {
	mu     sync.Mutex
	calls  []call
	counts map[string]int
	rules  []*rule
	next   []func() // run when the next call, whatever its name, starts

	vifID    string
	bridge   string
	networks map[string]*neutron.Network
	nextID   int
	nextAddr map[string]netip.Addr // subnet ID -> next address to hand out
	created  []string              // every port ID CreatePort made, in order

	ports     map[string]*neutron.Port
	bindings  map[string]int // binding-profile ports: port ID -> tag
	trunk     *neutron.Trunk // nil until EnsureTrunk makes it
	ovsPorts  map[string]ovs.AccessPort
	veths     map[string]veth
	downPolls int  // GetPort answers DOWN this many times before a wired port is ACTIVE
	inactive  bool // no port ever becomes ACTIVE
	// addedBehind is added to the trunk right after EnsureTrunk answered: someone's
	// subports that the engine's copy of the trunk does not show.
	addedBehind map[string]int
	routers     map[netip.Addr]string // gateway address -> its router port (RouterPortAt)
	neighbors   []neutron.Neighbor    // ports of other VMs on the network (Neighbors)
}

// veth is one pair in the fake VM.
type veth struct {
	peer  string
	netns string
	spec  *netdev.Spec // set by Create; nil for CreatePair
	mtu   int
}

func newWorld(vifID, bridge string, nets ...*neutron.Network) *world {
	w := &world{
		counts: map[string]int{}, vifID: vifID, bridge: bridge,
		networks: map[string]*neutron.Network{}, nextAddr: map[string]netip.Addr{},
		ports: map[string]*neutron.Port{}, bindings: map[string]int{},
		ovsPorts: map[string]ovs.AccessPort{}, veths: map[string]veth{},
	}
	for _, n := range nets {
		w.networks[n.ID] = n
	}
	return w
}

// failAt makes the nth call of name fail with err (nth 0: every call).
func (w *world) failAt(name string, nth int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rules = append(w.rules, &rule{call: name, nth: nth, err: err})
}

// failAfter makes the nth call of name do its work and then fail with err.
func (w *world) failAfter(name string, nth int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rules = append(w.rules, &rule{call: name, nth: nth, err: err, after: true})
}

// onCall runs do when the nth call of name starts.
func (w *world) onCall(name string, nth int, do func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rules = append(w.rules, &rule{call: name, nth: nth, do: do})
}

// hangAt makes the nth call of name wait until its context ends, then fail with the
// context's error.
func (w *world) hangAt(name string, nth int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rules = append(w.rules, &rule{call: name, nth: nth, hang: true})
}

// onNext runs do when the next call starts, whichever it is: the engine's next step
// outside, after whatever it is doing now has ended.
func (w *world) onNext(do func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next = append(w.next, do)
}

// enter records a call and applies the rules: err fails the call before it does
// anything, after once it has done its work.
func (w *world) enter(ctx context.Context, name string, args ...any) (after, err error) {
	w.mu.Lock()
	w.calls = append(w.calls, call{Name: name, Args: args})
	w.counts[name]++
	n := w.counts[name]
	var fire []*rule
	for _, r := range w.rules {
		if r.call == name && (r.nth == 0 || r.nth == n) {
			fire = append(fire, r)
		}
	}
	next := w.next
	w.next = nil
	w.mu.Unlock()
	for _, do := range next {
		do()
	}
	for _, r := range fire {
		if r.do != nil {
			r.do()
		}
		if r.hang {
			<-ctx.Done()
		}
		if r.err == nil {
			continue
		}
		if r.after {
			after = r.err
		} else if err == nil {
			err = r.err
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	return after, err
}

// log returns a copy of the calls so far.
func (w *world) log() []call {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

// reset forgets the calls so far, not the world.
func (w *world) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls, w.counts = nil, map[string]int{}
}

func names(calls []call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.Name
	}
	return out
}

func callsNamed(calls []call, name string) []call {
	var out []call
	for _, c := range calls {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// leftovers lists what ovn-docker made and did not remove; things whose name starts
// with "foreign" belong to someone else.
func (w *world) leftovers() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for id := range w.ports {
		out = append(out, "neutron port "+id)
	}
	if w.trunk != nil {
		for id, v := range w.trunk.Subports {
			if !strings.HasPrefix(id, "foreign") {
				out = append(out, fmt.Sprintf("subport %s vlan %d", id, v))
			}
		}
	}
	for name, p := range w.ovsPorts {
		if !strings.HasPrefix(name, "foreign") {
			out = append(out, fmt.Sprintf("ovs port %s tag %d", name, p.Tag))
		}
	}
	for name := range w.veths {
		out = append(out, "veth "+name)
	}
	sort.Strings(out)
	return out
}

// active tells whether OVN would have bound the port: the whole path from the container
// to the port exists and its VLANs agree.
func (w *world) active(id string) bool {
	if w.inactive {
		return false
	}
	tag, ok := w.bindings[id]
	if !ok && w.trunk != nil {
		tag, ok = w.trunk.Subports[id]
	}
	if !ok {
		return false
	}
	host := netdev.HostName(id)
	p, okPort := w.ovsPorts[host]
	_, okVeth := w.veths[host]
	return okPort && okVeth && p.Bridge == w.bridge && p.Tag == tag
}

// allocate hands out the next address of a subnet.
func (w *world) allocate(s neutron.Subnet) netip.Addr {
	a, ok := w.nextAddr[s.ID]
	if !ok {
		a = s.CIDR.Masked().Addr()
		for range 10 {
			a = a.Next()
		}
	}
	w.nextAddr[s.ID] = a.Next()
	return a
}

func clonePort(p *neutron.Port) *neutron.Port {
	c := *p
	c.MAC = slices.Clone(p.MAC)
	c.FixedIPs = slices.Clone(p.FixedIPs)
	c.Tags = slices.Clone(p.Tags)
	c.SecurityGroups = slices.Clone(p.SecurityGroups)
	return &c
}

func notFound(what string) error { return fmt.Errorf("%s: %w", what, neutron.ErrNotFound) }

// fakeNeutron is Neutron as seen by one VM's credentials.
type fakeNeutron struct{ w *world }

func (n fakeNeutron) CreatePort(ctx context.Context, r neutron.PortRequest) (*neutron.Port, error) {
	after, err := n.w.enter(ctx, "neutron.CreatePort", r)
	if err != nil {
		return nil, err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.checkPort(r); err != nil {
		return nil, err
	}
	p := w.makePort(r)
	if after != nil {
		return nil, after
	}
	return clonePort(p), nil
}

// CreatePorts is Neutron's bulk POST: all the ports, or none.
func (n fakeNeutron) CreatePorts(ctx context.Context, rs []neutron.PortRequest) ([]neutron.Port, error) {
	after, err := n.w.enter(ctx, "neutron.CreatePorts", slices.Clone(rs))
	if err != nil {
		return nil, err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range rs {
		if err := w.checkPort(r); err != nil {
			return nil, err
		}
	}
	out := make([]neutron.Port, 0, len(rs))
	for _, r := range rs {
		out = append(out, *clonePort(w.makePort(r)))
	}
	if after != nil {
		return nil, after
	}
	return out, nil
}

// checkPort refuses a port request as Neutron would; w.mu is held.
func (w *world) checkPort(r neutron.PortRequest) error {
	if r.NetworkID == "" || r.AttachmentID == "" || r.VIFID == "" {
		return errors.New("port request needs a network, an attachment ID and the VM's port")
	}
	if w.networks[r.NetworkID] == nil {
		return notFound("network " + r.NetworkID)
	}
	if r.Mode == neutron.ModeBindingProfile && !vlan.Valid(r.VLAN) {
		return fmt.Errorf("binding-profile port needs a VLAN, got %d", r.VLAN)
	}
	return nil
}

// makePort makes the port of a checked request; w.mu is held.
func (w *world) makePort(r neutron.PortRequest) *neutron.Port {
	nw := w.networks[r.NetworkID]
	w.nextID++
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", w.nextID, w.nextID)
	p := &neutron.Port{
		ID: id, Name: neutron.PortName(r.AttachmentID), NetworkID: r.NetworkID,
		MAC:    net.HardwareAddr{0xfa, 0x16, 0x3e, 0, byte(w.nextID >> 8), byte(w.nextID)},
		Status: "DOWN", Description: neutron.Description(r.VIFID), DeviceOwner: neutron.DeviceOwner,
		SecurityGroups: slices.Clone(r.SecurityGroups),
	}
	for _, s := range nw.Subnets {
		p.FixedIPs = append(p.FixedIPs, neutron.FixedIP{SubnetID: s.ID, IP: w.allocate(s)})
	}
	w.ports[id] = p
	w.created = append(w.created, id)
	if r.Mode == neutron.ModeBindingProfile {
		w.bindings[id] = r.VLAN
	}
	return p
}

// testHost is the hypervisor the fake VM's port is bound to.
const testHost = "hv-test"

func (n fakeNeutron) GetPort(ctx context.Context, id string) (*neutron.Port, error) {
	after, err := n.w.enter(ctx, "neutron.GetPort", id)
	if err != nil {
		return nil, err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if id == w.vifID {
		// The VM's own port, bound to its hypervisor as Nova binds it.
		if after != nil {
			return nil, after
		}
		return &neutron.Port{ID: id, Status: "ACTIVE", HostID: testHost}, nil
	}
	p := w.ports[id]
	if p == nil {
		return nil, notFound("get port " + id)
	}
	if after != nil {
		return nil, after
	}
	c := clonePort(p)
	if w.active(id) {
		if w.downPolls > 0 {
			w.downPolls--
		} else {
			c.Status = "ACTIVE"
		}
	}
	return c, nil
}

func (n fakeNeutron) DeletePort(ctx context.Context, id string) error {
	after, err := n.w.enter(ctx, "neutron.DeletePort", id)
	if err != nil {
		return err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.trunk != nil {
		if _, ok := w.trunk.Subports[id]; ok {
			return fmt.Errorf("delete port %s: it is a subport of trunk %s", id, w.trunk.ID)
		}
	}
	delete(w.ports, id)
	delete(w.bindings, id)
	return after
}

// VMPorts lists the ports made for the VM, as the collector's scan asks.
func (n fakeNeutron) VMPorts(ctx context.Context, vifID string) ([]neutron.Port, error) {
	after, err := n.w.enter(ctx, "neutron.VMPorts", vifID)
	if err != nil {
		return nil, err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if after != nil {
		return nil, after
	}
	var out []neutron.Port
	for _, p := range w.ports {
		if p.Description == neutron.Description(vifID) {
			out = append(out, *clonePort(p))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (n fakeNeutron) PortByAttachment(ctx context.Context, vifID, attachmentID string) (*neutron.Port, error) {
	after, err := n.w.enter(ctx, "neutron.PortByAttachment", vifID, attachmentID)
	if err != nil {
		return nil, err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if after != nil {
		return nil, after
	}
	for _, p := range w.ports {
		if p.Name == neutron.PortName(attachmentID) && p.Description == neutron.Description(vifID) {
			return clonePort(p), nil
		}
	}
	return nil, notFound("port of attachment " + attachmentID)
}

func (n fakeNeutron) EnsureTrunk(ctx context.Context, parentPortID string) (*neutron.Trunk, error) {
	after, err := n.w.enter(ctx, "neutron.EnsureTrunk", parentPortID)
	if err != nil {
		return nil, err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if parentPortID != w.vifID {
		return nil, notFound("make the VM's port " + parentPortID + " a trunk")
	}
	if w.trunk == nil {
		w.trunk = &neutron.Trunk{ID: "trunk-" + parentPortID, ParentID: parentPortID, Subports: map[string]int{}}
	}
	if after != nil {
		return nil, after
	}
	t := *w.trunk
	t.Subports = maps.Clone(w.trunk.Subports)
	for id, v := range w.addedBehind {
		w.trunk.Subports[id] = v
	}
	w.addedBehind = nil
	return &t, nil
}

// TrunkOf returns the VM port's trunk without making one.
func (n fakeNeutron) TrunkOf(ctx context.Context, parentPortID string) (*neutron.Trunk, error) {
	after, err := n.w.enter(ctx, "neutron.TrunkOf", parentPortID)
	if err != nil {
		return nil, err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if after != nil {
		return nil, after
	}
	if w.trunk == nil {
		return nil, nil
	}
	t := *w.trunk
	t.Subports = maps.Clone(w.trunk.Subports)
	return &t, nil
}

func (n fakeNeutron) AddSubport(ctx context.Context, trunkID, portID string, v int) error {
	after, err := n.w.enter(ctx, "neutron.AddSubport", trunkID, portID, v)
	if err != nil {
		return err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.checkSubport(trunkID, portID, v); err != nil {
		return err
	}
	w.trunk.Subports[portID] = v
	return after
}

// AddSubports is add_subports with many: all of them, or none.
func (n fakeNeutron) AddSubports(ctx context.Context, trunkID string, subs []neutron.Subport) error {
	after, err := n.w.enter(ctx, "neutron.AddSubports", trunkID, slices.Clone(subs))
	if err != nil {
		return err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	vlans, ports := map[int]bool{}, map[string]bool{}
	for _, s := range subs {
		if err := w.checkSubport(trunkID, s.PortID, s.VLAN); err != nil {
			return err
		}
		if vlans[s.VLAN] || ports[s.PortID] {
			return fmt.Errorf("add %d subports to trunk %s: port %s or vlan %d twice: %w", len(subs), trunkID, s.PortID, s.VLAN, neutron.ErrVLANInUse)
		}
		vlans[s.VLAN], ports[s.PortID] = true, true
	}
	for _, s := range subs {
		w.trunk.Subports[s.PortID] = s.VLAN
	}
	return after
}

// checkSubport refuses a subport as Neutron would; w.mu is held.
func (w *world) checkSubport(trunkID, portID string, v int) error {
	switch {
	case w.trunk == nil || w.trunk.ID != trunkID:
		return notFound("trunk " + trunkID)
	case w.ports[portID] == nil:
		return notFound("port " + portID)
	case !vlan.Valid(v):
		return fmt.Errorf("add port %s to trunk %s: bad vlan %d", portID, trunkID, v)
	}
	if _, ok := w.trunk.Subports[portID]; ok {
		return fmt.Errorf("add port %s to trunk %s: already a subport", portID, trunkID)
	}
	if w.trunk.VLANs()[v] {
		return fmt.Errorf("add port %s to trunk %s with vlan %d: %w", portID, trunkID, v, neutron.ErrVLANInUse)
	}
	return nil
}

func (n fakeNeutron) RemoveSubport(ctx context.Context, trunkID, portID string) error {
	after, err := n.w.enter(ctx, "neutron.RemoveSubport", trunkID, portID)
	if err != nil {
		return err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.trunk != nil && w.trunk.ID == trunkID {
		delete(w.trunk.Subports, portID)
	}
	return after
}

func (n fakeNeutron) SetDNSName(ctx context.Context, portID, name string) error {
	after, err := n.w.enter(ctx, "neutron.SetDNSName", portID, name)
	if err != nil {
		return err
	}
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	if n.w.ports[portID] == nil {
		return notFound("name port " + portID)
	}
	return after
}

func (n fakeNeutron) RouterPortAt(ctx context.Context, networkID string, ip netip.Addr) (*neutron.Port, error) {
	after, err := n.w.enter(ctx, "neutron.RouterPortAt", networkID, ip.String())
	if err != nil {
		return nil, err
	}
	n.w.mu.Lock()
	defer n.w.mu.Unlock()
	id, ok := n.w.routers[ip]
	if !ok {
		return nil, notFound("router port at " + ip.String())
	}
	return &neutron.Port{ID: id, NetworkID: networkID, DeviceOwner: "network:router_interface"}, after
}

func (n fakeNeutron) SetTags(ctx context.Context, portID string, tags []string) error {
	after, err := n.w.enter(ctx, "neutron.SetTags", portID, slices.Clone(tags))
	if err != nil {
		return err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.ports[portID]
	if p == nil {
		return notFound("tag port " + portID)
	}
	p.Tags = slices.Clone(tags)
	return after
}

// fakeSwitch is the VM's Open vSwitch.
type fakeSwitch struct{ w *world }

func (s fakeSwitch) AddAccessPort(ctx context.Context, p ovs.AccessPort) error {
	after, err := s.w.enter(ctx, "ovs.AddAccessPort", p)
	if err != nil {
		return err
	}
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case p.Bridge != w.bridge:
		return fmt.Errorf("bridge %s not found", p.Bridge)
	case !vlan.Valid(p.Tag):
		return fmt.Errorf("port %s: bad tag %d", p.Name, p.Tag)
	}
	if _, ok := w.veths[p.Name]; !ok {
		return fmt.Errorf("ovs-vswitchd could not add port %s to bridge %s: could not open network device %s (No such device)", p.Name, p.Bridge, p.Name)
	}
	if old, ok := w.ovsPorts[p.Name]; ok && old.Tag != p.Tag {
		return fmt.Errorf("add port %s to bridge %s: port already exists with tag %d, not %d", p.Name, p.Bridge, old.Tag, p.Tag)
	}
	p.ExternalIDs = maps.Clone(p.ExternalIDs)
	w.ovsPorts[p.Name] = p
	return after
}

func (s fakeSwitch) DeletePort(ctx context.Context, bridge, name string) error {
	after, err := s.w.enter(ctx, "ovs.DeletePort", bridge, name)
	if err != nil {
		return err
	}
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.ovsPorts[name]; ok {
		if p.Bridge != bridge {
			return fmt.Errorf("delete port %s: it is on bridge %s, not %s", name, p.Bridge, bridge)
		}
		delete(w.ovsPorts, name)
	}
	return after
}

func (s fakeSwitch) UsedTags(ctx context.Context, bridge string) (map[int]bool, error) {
	after, err := s.w.enter(ctx, "ovs.UsedTags", bridge)
	if err != nil {
		return nil, err
	}
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if bridge != w.bridge {
		return nil, fmt.Errorf("bridge %s not found", bridge)
	}
	if after != nil {
		return nil, after
	}
	tags := map[int]bool{}
	for _, p := range w.ovsPorts {
		if p.Bridge == bridge && p.Tag != 0 {
			tags[p.Tag] = true
		}
	}
	return tags, nil
}

// Ports lists the bridge's ports, as the collector's scan asks.
func (s fakeSwitch) Ports(ctx context.Context, bridge string) ([]ovs.PortInfo, error) {
	after, err := s.w.enter(ctx, "ovs.Ports", bridge)
	if err != nil {
		return nil, err
	}
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if bridge != w.bridge {
		return nil, fmt.Errorf("bridge %s not found", bridge)
	}
	if after != nil {
		return nil, after
	}
	var out []ovs.PortInfo
	for _, p := range w.ovsPorts {
		if p.Bridge == bridge {
			out = append(out, ovs.PortInfo{Name: p.Name, Tag: p.Tag, ExternalIDs: maps.Clone(p.ExternalIDs)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// fakeLinks is the VM's network devices.
type fakeLinks struct{ w *world }

func (l fakeLinks) Create(ctx context.Context, s netdev.Spec) error {
	after, err := l.w.enter(ctx, "links.Create", s)
	if err != nil {
		return err
	}
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.HostName == "" || s.PeerName == "" || s.NetNS == "" || s.IfName == "" {
		return fmt.Errorf("spec %+v: %w", s, netdev.ErrInvalidSpec)
	}
	if _, ok := w.veths[s.HostName]; ok {
		return fmt.Errorf("create veth %s: %w", s.HostName, netdev.ErrNameInUse)
	}
	c := s
	w.veths[s.HostName] = veth{peer: s.PeerName, netns: s.NetNS, spec: &c, mtu: s.MTU}
	return after
}

func (l fakeLinks) CreatePair(ctx context.Context, hostName, peerName string, mtu int, _ net.HardwareAddr) error {
	after, err := l.w.enter(ctx, "links.CreatePair", hostName, peerName, mtu)
	if err != nil {
		return err
	}
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if hostName == "" || peerName == "" || hostName == peerName {
		return fmt.Errorf("pair %q/%q: %w", hostName, peerName, netdev.ErrInvalidSpec)
	}
	if _, ok := w.veths[hostName]; ok {
		return fmt.Errorf("create veth %s: %w", hostName, netdev.ErrNameInUse)
	}
	w.veths[hostName] = veth{peer: peerName, mtu: mtu}
	return after
}

// Probe answers like OVN's DHCP: only once the port with that MAC is wired end to end
// (subport or binding, veth, access port with the VLAN), after downPolls misses.
func (l fakeLinks) Probe(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, ip netip.Addr) error {
	after, err := l.w.enter(ctx, "links.Probe", nsPath, ifName, mac.String(), ip.String())
	if err != nil {
		return err
	}
	return l.wired(ctx, ifName, mac, after)
}

// ProbeGateway answers like OVN's responders, when the port is wired (see Probe).
func (l fakeLinks) ProbeGateway(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, g GatewayProof) error {
	after, err := l.w.enter(ctx, "links.ProbeGateway", nsPath, ifName, mac.String(), g.String())
	if err != nil {
		return err
	}
	return l.wired(ctx, ifName, mac, after)
}

// wired waits until the port with that MAC is wired end to end, after downPolls misses.
func (l fakeLinks) wired(ctx context.Context, ifName string, mac net.HardwareAddr, after error) error {
	w := l.w
	for {
		w.mu.Lock()
		ok := false
		for id, p := range w.ports {
			if p.MAC.String() == mac.String() && w.active(id) {
				if w.downPolls > 0 {
					w.downPolls--
					break
				}
				ok = true
			}
		}
		w.mu.Unlock()
		if ok {
			return after
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w on %s", probe.ErrNoAnswer, ifName)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Inspect answers from the spec the pair was made with: the fake's kernel keeps what
// it was given.
func (l fakeLinks) Inspect(ctx context.Context, nsPath, ifName string) (*netdev.Live, error) {
	if _, err := l.w.enter(ctx, "links.Inspect", nsPath, ifName); err != nil {
		return nil, err
	}
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.veths {
		if v.spec != nil && v.spec.NetNS == nsPath && v.spec.IfName == ifName {
			live := &netdev.Live{MAC: v.spec.MAC, MTU: v.mtu, Up: true}
			for _, a := range v.spec.Addrs {
				ip, _ := netip.AddrFromSlice(a.IP)
				ones, _ := a.Mask.Size()
				live.Addrs = append(live.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
			}
			return live, nil
		}
	}
	return nil, fmt.Errorf("%s in %s: %w", ifName, nsPath, netdev.ErrGone)
}

func (l fakeLinks) Delete(ctx context.Context, hostName string) error {
	after, err := l.w.enter(ctx, "links.Delete", hostName)
	if err != nil {
		return err
	}
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.veths, hostName)
	return after
}

// MoveIn moves the container end of a pair that is in the VM into its container.
func (l fakeLinks) MoveIn(ctx context.Context, s netdev.Spec) error {
	after, err := l.w.enter(ctx, "links.MoveIn", s)
	if err != nil {
		return err
	}
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.HostName == "" || s.PeerName == "" || s.NetNS == "" || s.IfName == "" {
		return fmt.Errorf("spec %+v: %w", s, netdev.ErrInvalidSpec)
	}
	v, ok := w.veths[s.HostName]
	if !ok || v.peer != s.PeerName || v.netns != "" {
		return fmt.Errorf("move %s into %s: no such pair in the VM: %w", s.PeerName, s.NetNS, netdev.ErrGone)
	}
	c := s
	v.netns, v.spec = s.NetNS, &c
	w.veths[s.HostName] = v
	return after
}

// Reclaim takes a pair's container end back into the VM; ErrGone when the container's
// netns (and so the pair) is gone.
func (l fakeLinks) Reclaim(ctx context.Context, nsPath, ifName, peerName string) error {
	after, err := l.w.enter(ctx, "links.Reclaim", nsPath, ifName, peerName)
	if err != nil {
		return err
	}
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for host, v := range w.veths {
		if v.peer == peerName && v.netns == nsPath && nsPath != "" {
			v.netns, v.spec = "", nil
			w.veths[host] = v
			return after
		}
	}
	return fmt.Errorf("reclaim %s from %s: %w", ifName, nsPath, netdev.ErrGone)
}

// List names the links in the VM that start with prefix: every pair's VM end, and the
// container ends not moved into a container.
func (l fakeLinks) List(ctx context.Context, prefix string) ([]string, error) {
	after, err := l.w.enter(ctx, "links.List", prefix)
	if err != nil {
		return nil, err
	}
	w := l.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if after != nil {
		return nil, after
	}
	var out []string
	for host, v := range w.veths {
		if strings.HasPrefix(host, prefix) {
			out = append(out, host)
		}
		if v.netns == "" && strings.HasPrefix(v.peer, prefix) {
			out = append(out, v.peer)
		}
	}
	sort.Strings(out)
	return out, nil
}

// dropNetNS is a container's netns going away: the pairs whose container end is in it
// die with it.
func (w *world) dropNetNS(ns string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for host, v := range w.veths {
		if v.netns == ns {
			delete(w.veths, host)
		}
	}
}

func (n fakeNeutron) SetFixedIPs(ctx context.Context, portID string, fs []neutron.FixedIPRequest) (*neutron.Port, error) {
	after, err := n.w.enter(ctx, "neutron.SetFixedIPs", portID, slices.Clone(fs))
	if err != nil {
		return nil, err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.ports[portID]
	if p == nil {
		return nil, notFound("set the addresses of port " + portID)
	}
	p.FixedIPs = nil
	for _, f := range fs {
		p.FixedIPs = append(p.FixedIPs, neutron.FixedIP{SubnetID: f.SubnetID, IP: f.IP})
	}
	cp := *p
	return &cp, after
}

// Neighbors lists the network's ports, in ID order, up to limit, and the ones set in
// w.neighbors after them.
func (n fakeNeutron) Neighbors(ctx context.Context, networkID string, limit int) ([]neutron.Neighbor, error) {
	after, err := n.w.enter(ctx, "neutron.Neighbors", networkID, limit)
	if err != nil {
		return nil, err
	}
	w := n.w
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []neutron.Neighbor
	for _, id := range slices.Sorted(maps.Keys(w.ports)) {
		p := w.ports[id]
		if p.NetworkID != networkID {
			continue
		}
		nb := neutron.Neighbor{PortID: id, DeviceOwner: p.DeviceOwner, Active: w.active(id), PortSecurity: true}
		for _, f := range p.FixedIPs {
			nb.IPs = append(nb.IPs, f.IP)
		}
		out = append(out, nb)
	}
	out = append(out, w.neighbors...)
	return out[:min(limit, len(out))], after
}
