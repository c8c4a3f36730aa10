package dockerplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// fakeEngine keeps attachments in the real state store, as the engine does, and records
// the calls it gets. The plugin reads the state through the engine's own Records.
type fakeEngine struct {
	*engine.Records
	store *state.Store

	mu      sync.Mutex
	calls   []string
	nextIP  map[string]int // by Neutron network
	fail    map[string]error
	ipsFor  func(n *neutron.Network, i int) []string // overrides the addresses Prepare gives
	onPlumb func(attID string)                       // called inside Plumb, before it returns
	onGC    func()                                   // called inside GC
	// orphans deletes the orphaned ports of a network and says how many it deleted.
	orphans func(networkID string) int
}

func newFakeEngine(st *state.Store) *fakeEngine {
	return &fakeEngine{Records: engine.NewRecords(st), store: st, nextIP: map[string]int{}, fail: map[string]error{}}
}

func (f *fakeEngine) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	name, _, _ := strings.Cut(call, " ")
	return f.fail[name]
}

func (f *fakeEngine) called(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeEngine) Prepare(ctx context.Context, req engine.Request) (*state.Attachment, error) {
	call := "Prepare " + req.Owner
	if len(req.SecurityGroups) > 0 {
		call += " sg=" + strings.Join(req.SecurityGroups, ",")
	}
	if !req.Port.Empty() {
		call += fmt.Sprintf(" port=%+v", req.Port)
	}
	for _, ip := range req.FixedIPs {
		call += " fixed=" + ip.String()
	}
	if err := f.record(call); err != nil {
		return nil, err
	}
	if !req.AtRest || req.OwnerKind != state.OwnerEndpoint || req.NetNS != "" {
		return nil, fmt.Errorf("fake: unexpected request %+v", req)
	}
	f.mu.Lock()
	f.nextIP[req.Network.ID]++
	i := f.nextIP[req.Network.ID]
	f.mu.Unlock()
	var ips []string
	if len(req.FixedIPs) > 0 {
		for _, ip := range req.FixedIPs {
			sub, _ := subnetOf(req.Network, ip)
			ips = append(ips, netip.PrefixFrom(ip, sub.CIDR.Bits()).String())
		}
	} else if f.ipsFor != nil {
		ips = f.ipsFor(req.Network, i)
	} else {
		sub, _ := firstIPv4(req.Network)
		a := sub.CIDR.Addr()
		for j := 0; j < i+9; j++ {
			a = a.Next()
		}
		ips = []string{netip.PrefixFrom(a, sub.CIDR.Bits()).String()}
	}
	now := time.Now().UTC()
	att := &state.Attachment{
		ID: fmt.Sprintf("att%d-%s", i, short(req.Network.ID)), Owner: req.Owner, OwnerKind: req.OwnerKind,
		NetworkID: req.Network.ID, NetworkName: req.Network.Name, VLAN: 100 + i, Mode: "trunk",
		PortID: fmt.Sprintf("port-%d-%s", i, req.Network.ID), MAC: fmt.Sprintf("fa:16:3e:00:00:%02x", i), IPs: ips,
		MTU: 1442, Phase: state.PhasePrepared, Created: now, Updated: now, IPAMPool: req.IPAMPool, Secondary: req.Secondary,
	}
	err := f.store.Update(ctx, func(st *state.State) error {
		st.Attachments[att.ID] = att
		return nil
	})
	return att, err
}

func (f *fakeEngine) Plumb(ctx context.Context, attID string, req engine.Request) (*state.Attachment, error) {
	if err := f.record("Plumb " + attID + " " + req.Owner); err != nil {
		return nil, err
	}
	if f.onPlumb != nil {
		f.onPlumb(attID)
	}
	var out *state.Attachment
	err := f.store.Update(ctx, func(st *state.State) error {
		a := st.Attachments[attID]
		if a == nil {
			return fmt.Errorf("fake: no attachment %s", attID)
		}
		a.Owner, a.OwnerKind = req.Owner, req.OwnerKind
		a.HostIf, a.PeerIf, a.Phase, a.Updated = "odv"+attID, "odc"+attID, state.PhaseReady, time.Now().UTC()
		c := *a
		out = &c
		return nil
	})
	return out, err
}

func (f *fakeEngine) Unplumb(ctx context.Context, attID string) error {
	if err := f.record("Unplumb " + attID); err != nil {
		return err
	}
	return f.store.Update(ctx, func(st *state.State) error {
		a := st.Attachments[attID]
		if a == nil {
			return fmt.Errorf("fake: no attachment %s", attID)
		}
		a.HostIf, a.PeerIf, a.Phase, a.Updated = "", "", state.PhasePrepared, time.Now().UTC()
		return nil
	})
}

func (f *fakeEngine) Detach(ctx context.Context, attID string) error {
	if err := f.record("Detach " + attID); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err() // the real engine would stop half-way
	}
	return f.store.Update(ctx, func(st *state.State) error {
		delete(st.Attachments, attID)
		return nil
	})
}

func (f *fakeEngine) GC(context.Context, engine.Owners, time.Duration) (engine.GCReport, error) {
	err := f.record("GC")
	if f.onGC != nil {
		f.onGC()
	}
	return engine.GCReport{}, err
}

func (f *fakeEngine) Label(ctx context.Context, attID, container, name string) error {
	if err := f.record("Label " + attID + " " + container + " " + name); err != nil {
		return err
	}
	return f.store.Update(ctx, func(st *state.State) error {
		if a := st.Attachments[attID]; a != nil {
			a.Container, a.ContainerName = container, name
		}
		return nil
	})
}

func (f *fakeEngine) DeleteOrphanPorts(_ context.Context, networkID string) (int, error) {
	if err := f.record("DeleteOrphanPorts " + networkID); err != nil {
		return 0, err
	}
	if f.orphans == nil {
		return 0, nil
	}
	return f.orphans(networkID), nil
}

func (f *fakeEngine) RestoreAccessPort(_ context.Context, attID string) error {
	return f.record("RestoreAccessPort " + attID)
}

// fakeNeutron holds networks in memory.
type fakeNeutron struct {
	mu      sync.Mutex
	nets    map[string]*neutron.Network
	n       int
	calls   []string
	failDel error
	onMake  func()         // called once a network is made
	held    map[string]int // ports that keep a network from being deleted, by network
}

func newFakeNeutron() *fakeNeutron {
	return &fakeNeutron{nets: map[string]*neutron.Network{}, held: map[string]int{}}
}

// hold makes n ports keep the network from being deleted.
func (f *fakeNeutron) hold(id string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held[id] = n
}

func (f *fakeNeutron) add(name, cidr, gw string) *neutron.Network {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprintf("00000000-0000-0000-0000-%012d", f.n)
	n := &neutron.Network{ID: id, Name: name, MTU: 1442, Subnets: []neutron.Subnet{{
		ID: "sub-" + id, CIDR: netip.MustParsePrefix(cidr), IPVersion: 4, DHCP: true,
	}}}
	if gw != "" {
		n.Subnets[0].Gateway = netip.MustParseAddr(gw)
	}
	f.nets[id] = n
	return n
}

func (f *fakeNeutron) called(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeNeutron) byName(name string) *neutron.Network {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.nets {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (f *fakeNeutron) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nets[id] != nil
}

func (f *fakeNeutron) FindNetwork(_ context.Context, ref string) (*neutron.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n, ok := f.nets[ref]; ok {
		c := *n
		return &c, nil
	}
	var found []*neutron.Network
	for _, n := range f.nets {
		if n.Name == ref {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("network %q: %w", ref, neutron.ErrNotFound)
	case 1:
		c := *found[0]
		return &c, nil
	}
	return nil, fmt.Errorf("network name %q is ambiguous", ref)
}

func (f *fakeNeutron) CreateNetwork(_ context.Context, o neutron.CreateNetworkOpts) (*neutron.Network, string, error) {
	if n := f.byName(o.Name); n != nil {
		return nil, "", fmt.Errorf("network %q already exists", o.Name)
	}
	cidr, gw, note := o.Subnet, o.Gateway, "as asked"
	if !cidr.IsValid() {
		f.mu.Lock()
		cidr, note = netip.MustParsePrefix(fmt.Sprintf("10.10.%d.0/24", f.n+1)), "a free /24"
		f.mu.Unlock()
	}
	if !gw.IsValid() {
		gw = cidr.Addr().Next()
	}
	n := f.add(o.Name, cidr.String(), gw.String())
	f.mu.Lock()
	f.calls = append(f.calls, "CreateNetwork "+o.Name+" "+cidr.String()+" "+gw.String())
	f.mu.Unlock()
	if f.onMake != nil {
		f.onMake()
	}
	c := *n
	return &c, note, nil
}

func (f *fakeNeutron) DeleteNetwork(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "DeleteNetwork "+id)
	if f.failDel != nil {
		return f.failDel
	}
	if f.held[id] > 0 {
		return fmt.Errorf("delete network %s: %d ports still in use: %w", id, f.held[id], neutron.ErrNetworkInUse)
	}
	if _, ok := f.nets[id]; !ok {
		return fmt.Errorf("delete network %s: %w", id, neutron.ErrNotFound)
	}
	delete(f.nets, id)
	return nil
}

func (f *fakeNeutron) FindSubnet(_ context.Context, id, name string) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.nets {
		for _, s := range n.Subnets {
			if (id != "" && s.ID == id) || (id == "" && n.Name+"-v4" == name) {
				return n.ID, s.ID, nil
			}
		}
	}
	return "", "", fmt.Errorf("subnet: %w", neutron.ErrNotFound)
}

// QoSPolicyID knows the policy "slow" (id qos-slow).
func (f *fakeNeutron) QoSPolicyID(_ context.Context, ref string) (string, error) {
	if ref == "slow" || ref == "qos-slow" {
		return "qos-slow", nil
	}
	return "", fmt.Errorf("qos policy %q: %w", ref, neutron.ErrNotFound)
}

// SecurityGroupIDs knows the groups "web" (id sg-web) and "db" (id sg-db).
func (f *fakeNeutron) SecurityGroupIDs(_ context.Context, refs []string) ([]string, error) {
	known := map[string]string{"web": "sg-web", "sg-web": "sg-web", "db": "sg-db", "sg-db": "sg-db"}
	var out []string
	for _, r := range refs {
		id, ok := known[r]
		if !ok {
			return nil, fmt.Errorf("security group %q: %w", r, neutron.ErrNotFound)
		}
		out = append(out, id)
	}
	return out, nil
}

func (f *fakeNeutron) RenameNetwork(_ context.Context, id, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "RenameNetwork "+id+" "+name)
	n, ok := f.nets[id]
	if !ok {
		return neutron.ErrNotFound
	}
	n.Name = name
	return nil
}

func (f *fakeNeutron) TagNetwork(_ context.Context, id string, tags []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "TagNetwork "+id+" "+strings.Join(tags, ","))
	return nil
}

// fakeDocker answers with the networks it holds.
type fakeDocker struct {
	mu         sync.Mutex
	nets       map[string]docker.Network
	containers map[string]docker.Info // by ID
	err        error
}

func (f *fakeDocker) setContainer(c docker.Info) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.containers == nil {
		f.containers = map[string]docker.Info{}
	}
	f.containers[c.ID] = c
}

func (f *fakeDocker) removeContainer(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
}

func (f *fakeDocker) Inspect(_ context.Context, ref string) (docker.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return docker.Info{}, f.err
	}
	if c, ok := f.containers[ref]; ok {
		return c, nil
	}
	return docker.Info{}, fmt.Errorf("container %s: %w", ref, docker.ErrNotFound)
}

func (f *fakeDocker) set(n docker.Network) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nets == nil {
		f.nets = map[string]docker.Network{}
	}
	f.nets[n.ID] = n
}

func (f *fakeDocker) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeDocker) Networks(_ context.Context, driver string) ([]docker.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []docker.Network
	for _, n := range f.nets {
		if n.Driver == driver {
			out = append(out, n)
		}
	}
	return out, nil
}

func (f *fakeDocker) Network(_ context.Context, ref string) (docker.Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return docker.Network{}, f.err
	}
	if n, ok := f.nets[ref]; ok {
		return n, nil
	}
	return docker.Network{}, fmt.Errorf("network %s: %w", ref, docker.ErrNotFound)
}

// fakeHost says which links and ports exist.
type fakeHost struct {
	mu    sync.Mutex
	gone  map[string]bool // links that do not exist
	noOVS map[string]bool // ports that do not exist
}

func (f *fakeHost) lose(link, port string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if link != "" {
		f.gone[link] = true
	}
	if port != "" {
		f.noOVS[port] = true
	}
}

func (f *fakeHost) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone, f.noOVS = map[string]bool{}, map[string]bool{}
}

func (f *fakeHost) LinkExists(_ context.Context, name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.gone[name], nil
}

func (f *fakeHost) PortExists(_ context.Context, name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.noOVS[name], nil
}

var errBoom = errors.New("boom\nsecond line")

func (f *fakeEngine) Readdress(ctx context.Context, attID string, n *neutron.Network, want netip.Addr) (*state.Attachment, error) {
	if err := f.record("Readdress " + attID + " " + want.String()); err != nil {
		return nil, err
	}
	var out *state.Attachment
	err := f.store.Update(ctx, func(st *state.State) error {
		a := st.Attachments[attID]
		if a == nil {
			return fmt.Errorf("fake: no attachment %s", attID)
		}
		sub, _ := subnetOf(n, want)
		var ips []string
		for _, s := range a.IPs {
			if p := netip.MustParsePrefix(s); p.Addr().Is4() != want.Is4() {
				ips = append(ips, s)
			}
		}
		a.IPs = append(ips, netip.PrefixFrom(want, sub.CIDR.Bits()).String())
		c := *a
		out = &c
		return nil
	})
	return out, err
}

func (f *fakeNeutron) UsedAddresses(context.Context, string) (map[netip.Addr]bool, error) {
	return map[netip.Addr]bool{}, nil
}
