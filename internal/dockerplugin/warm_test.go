package dockerplugin

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// fakePools records which pools are declared, by whom.
type fakePools struct {
	records *engine.Records
	mu      sync.Mutex
	holders map[string]map[string]bool // key -> holders
	specs   map[string]pool.Spec
}

func (f *fakePools) AddFor(holder string, s pool.Spec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := pool.Key(s.Network.ID, s.SecurityGroups)
	if f.holders[key] == nil {
		f.holders[key] = map[string]bool{}
	}
	f.holders[key][holder] = true
	f.specs[key] = s
	return key, nil
}

func (f *fakePools) RemoveFor(_ context.Context, holder, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.holders[key], holder)
	if len(f.holders[key]) == 0 {
		delete(f.holders, key)
	}
	return nil
}

// Reserve takes from the state, as the pools do (engine.Records.ClaimReady).
func (f *fakePools) Reserve(ctx context.Context, key string, to engine.Holder, change func(*state.Attachment)) (*state.Attachment, error) {
	if !f.Declared(key) {
		return nil, nil
	}
	return f.records.ClaimReady(ctx, key, to, change)
}

func (f *fakePools) Declared(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.holders[key]) > 0
}

// warmRig is a rig whose plugin has pools and records what it releases.
type warmRig struct {
	*rig
	pools    *fakePools
	released chan string
}

func newWarmRig(t *testing.T) *warmRig {
	r := newRig(t)
	w := &warmRig{rig: r, pools: &fakePools{records: engine.NewRecords(r.store), holders: map[string]map[string]bool{}, specs: map[string]pool.Spec{}},
		released: make(chan string, 16)}
	r.p.cfg.Pools = w.pools
	r.p.cfg.Release = func(ctx context.Context, id string) error {
		err := r.eng.Detach(ctx, id)
		w.released <- id
		return err
	}
	return w
}

// ready puts a pool's ready interface in the state, as the agent's pools make them.
func (w *warmRig) ready(key, networkID, ip string) string {
	w.t.Helper()
	id := fmt.Sprintf("ready-%d", time.Now().UnixNano())
	now := time.Now().UTC()
	err := w.store.Update(context.Background(), func(st *state.State) error {
		st.Attachments[id] = &state.Attachment{ID: id, Owner: key, OwnerKind: state.OwnerPool, Pool: key, NetworkID: networkID,
			VLAN: 900 + len(st.Attachments), Mode: "trunk", PortID: "port-" + id, MAC: "fa:16:3e:aa:00:01", IPs: []string{ip},
			HostIf: "odv" + id, PeerIf: "odc" + id, Phase: state.PhaseReady, Created: now, Updated: now}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

func (w *warmRig) att(id string) *state.Attachment {
	w.t.Helper()
	a := w.state().Attachments[id]
	if a == nil {
		w.t.Fatalf("no attachment %s", id)
	}
	return a
}

// start runs a container's start on a network: RequestAddress, CreateEndpoint, Join.
func (w *warmRig) start(netID, poolID, ep, want string) (addr string, join map[string]any) {
	w.t.Helper()
	addr = w.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID, Address: want})["Address"].(string)
	w.ok("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: netID, EndpointID: ep, Interface: &endpointInterface{Address: addr}})
	join = w.ok("NetworkDriver.Join", joinRequest{NetworkID: netID, EndpointID: ep, SandboxKey: "/var/run/docker/netns/x"})
	return addr, join
}

// stop runs a container's end: Leave, DeleteEndpoint, ReleaseAddress.
func (w *warmRig) stop(netID, poolID, ep, addr string) {
	w.t.Helper()
	w.ok("NetworkDriver.Leave", endpointRequest{NetworkID: netID, EndpointID: ep})
	w.ok("NetworkDriver.DeleteEndpoint", endpointRequest{NetworkID: netID, EndpointID: ep})
	w.ok("IpamDriver.ReleaseAddress", releaseAddressRequest{PoolID: poolID, Address: strings.Split(addr, "/")[0]})
}

const (
	ep1 = "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1"
	ep2 = "e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2"
)

// A network made with -o pool.min keeps a pool; a container's start takes a ready
// interface of it with no Neutron call and no plumbing, and its end (container unknown)
// releases it in the background, after a journaled hand-over.
func TestWarmStartFromThePool(t *testing.T) {
	w := newWarmRig(t)
	poolID, _, gw := w.network(netA, "10.30.0.0/24", "", nil, map[string]string{OptPoolMin: "2", OptPoolMax: "4"})
	rec := w.state().DockerNetworks[netA]
	key := pool.Key(rec.NeutronNetwork, rec.SecurityGroups)
	if !w.pools.Declared(key) || w.pools.specs[key].Min != 2 || w.pools.specs[key].Max != 4 || rec.PoolMin != 2 {
		t.Fatalf("pool not declared as asked: %+v %+v", w.pools.specs, rec)
	}
	id := w.ready(key, rec.NeutronNetwork, "10.30.0.77/24")
	addr, join := w.start(netA, poolID, ep1, "")
	if addr != "10.30.0.77/24" {
		t.Fatalf("address %s, want the ready interface's", addr)
	}
	if c := w.eng.called("Prepare "); len(c) != 0 {
		t.Fatalf("a Neutron port was made with one ready: %v", c)
	}
	if c := w.eng.called("Plumb "); len(c) != 0 {
		t.Fatalf("a ready interface was plumbed again: %v", c)
	}
	if a := w.att(id); a.Owner != ep1 || a.OwnerKind != state.OwnerEndpoint || a.IPAMPool != poolID {
		t.Fatalf("after the start: %+v", a)
	}
	if iface := join["InterfaceName"].(map[string]any); iface["SrcName"] != "odc"+id || join["Gateway"] != strings.Split(gw, "/")[0] {
		t.Fatalf("Join: %v", join)
	}
	// Docker shows the network (its name is learnt), but never the short-lived container.
	w.dk.set(docker.Network{ID: netA, Name: "LS1", Driver: "ovn"})
	w.stop(netA, poolID, ep1, addr)
	if got := <-w.released; got != id {
		t.Fatalf("released %s, want %s", got, id)
	}
	if len(w.state().Attachments) != 0 {
		t.Fatalf("left: %+v", w.state().Attachments)
	}
	// The network's removal gives its pool up. Docker releases the IPAM pool first,
	// then deletes the network.
	w.ok("IpamDriver.ReleaseAddress", releaseAddressRequest{PoolID: poolID, Address: strings.Split(gw, "/")[0]})
	w.ok("IpamDriver.ReleasePool", releasePoolRequest{PoolID: poolID})
	if w.pools.Declared(key) {
		t.Fatal("the pool outlived its network's IPAM pool")
	}
	w.ok("NetworkDriver.DeleteNetwork", networkRequest{NetworkID: netA})
}

// Without a ready interface the start is cold (a port prepared, then plumbed).
func TestColdStartWhenThePoolIsEmpty(t *testing.T) {
	w := newWarmRig(t)
	poolID, _, _ := w.network(netA, "10.30.0.0/24", "", nil, map[string]string{OptPoolMin: "1"})
	addr, _ := w.start(netA, poolID, ep1, "")
	if len(w.eng.called("Prepare ")) != 1 || len(w.eng.called("Plumb ")) != 1 {
		t.Fatalf("calls %v, want a cold Prepare and Plumb", w.eng.calls)
	}
	_ = addr
}

// A container Docker stops keeps its port (parked); when it starts again it gets the
// same port back (same MAC and address); its removal releases it.
func TestStoppedContainerKeepsItsPort(t *testing.T) {
	w := newWarmRig(t)
	poolID, _, _ := w.network(netA, "10.30.0.0/24", "", nil, nil)
	addr, _ := w.start(netA, poolID, ep1, "")
	var id string
	for k := range w.state().Attachments {
		id = k
	}
	// Docker shows the container: the plugin learns it, and that it restarts by itself.
	w.dk.setContainer(docker.Info{ID: "c1", RestartPolicy: "always"})
	w.dk.set(docker.Network{ID: netA, Name: "LS1", Driver: "ovn", Endpoints: []docker.Endpoint{{ID: ep1, Container: "c1", Name: "web", IPv4: addr}}})
	w.settle()
	if a := w.att(id); a.Container != "c1" || !a.Restarts {
		t.Fatalf("after Docker showed it: %+v", a)
	}
	w.stop(netA, poolID, ep1, addr)
	if a := w.att(id); a.Owner != "c1" || a.OwnerKind != state.OwnerParked {
		t.Fatalf("stopped: %+v, want parked for c1", a)
	}
	prepared := len(w.eng.called("Prepare "))
	again, _ := w.start(netA, poolID, ep2, "")
	if again != addr || len(w.eng.called("Prepare ")) != prepared || len(w.eng.called("Plumb ")) != 1 {
		t.Fatalf("started again with %s (was %s); calls %v", again, addr, w.eng.calls)
	}
	if a := w.att(id); a.Owner != ep2 {
		t.Fatalf("started again: %+v", a)
	}
	w.stop(netA, poolID, ep2, addr)
	// A reconciliation while the container exists keeps it.
	if err := w.p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a := w.att(id); a.OwnerKind != state.OwnerParked {
		t.Fatalf("reconciled away while its container exists: %+v", a)
	}
	// Once Docker no longer has the container, the next reconciliation releases it.
	w.dk.removeContainer("c1")
	if err := w.p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := <-w.released; got != id {
		t.Fatalf("released %s, want %s", got, id)
	}
}

// Docker does not say which container asks: of several parked ports, the one of the only
// container that restarts by itself is given back; when that does not decide, a new one.
func TestWhichParkedPortGoesBack(t *testing.T) {
	for _, tc := range []struct {
		name     string
		restarts []bool
		want     int // index of the parked port given back, -1 for a new port
	}{
		{"one parked", []bool{false}, 0},
		{"one of two restarts", []bool{false, true}, 1},
		{"two, none restarts", []bool{false, false}, -1},
		{"two restart", []bool{true, true}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWarmRig(t)
			poolID, _, _ := w.network(netA, "10.30.0.0/24", "", nil, nil)
			var ids, addrs []string
			for i, r := range tc.restarts {
				ep := fmt.Sprintf("%064d", i+1)
				addr, _ := w.start(netA, poolID, ep, "")
				var id string
				for k, a := range w.state().Attachments {
					if a.Owner == ep {
						id = k
					}
				}
				c := fmt.Sprintf("c%d", i)
				if err := w.eng.Label(context.Background(), id, c, c); err != nil {
					t.Fatal(err)
				}
				if r {
					w.p.noteRestarts(context.Background(), ep, id, c)
				}
				ids, addrs = append(ids, id), append(addrs, addr)
			}
			for i, r := range tc.restarts {
				policy := "no"
				if r {
					policy = "always"
				}
				w.dk.setContainer(docker.Info{ID: fmt.Sprintf("c%d", i), RestartPolicy: policy})
			}
			for i, r := range tc.restarts {
				if r {
					w.p.noteRestarts(context.Background(), fmt.Sprintf("%064d", i+1), ids[i], fmt.Sprintf("c%d", i))
				}
				w.stop(netA, poolID, fmt.Sprintf("%064d", i+1), addrs[i])
			}
			addr, _ := w.start(netA, poolID, ep2, "")
			switch {
			case tc.want < 0:
				for _, a := range addrs {
					if a == addr {
						t.Fatalf("got %s, a parked port, when none could be told apart", addr)
					}
				}
			case addr != addrs[tc.want]:
				t.Fatalf("got %s, want %s (the port of c%d)", addr, addrs[tc.want], tc.want)
			}
		})
	}
}

// A fixed address (the agent's run, or --ip) is the port reserved for it, or the
// parked one of a container that had it; any other is refused.
func TestFixedAddress(t *testing.T) {
	w := newWarmRig(t)
	poolID, _, _ := w.network(netA, "10.30.0.0/24", "", nil, nil)
	rec := w.state().DockerNetworks[netA]
	now := time.Now().UTC()
	err := w.store.Update(context.Background(), func(st *state.State) error {
		st.Attachments["res"] = &state.Attachment{ID: "res", Owner: "run-1", OwnerKind: state.OwnerReserved, NetworkID: rec.NeutronNetwork,
			VLAN: 950, PortID: "port-res", MAC: "fa:16:3e:aa:00:09", IPs: []string{"10.30.0.90/24"}, HostIf: "odvres", PeerIf: "odcres",
			Phase: state.PhaseReady, Secondary: true, Created: now, Updated: now}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Not this VM's: a port is made with exactly that address (the cold path).
	if got := w.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID, Address: "10.30.0.91"}); got["Address"] != "10.30.0.91/24" {
		t.Fatalf("a new fixed address: %v", got)
	}
	if c := w.eng.called("Prepare "); len(c) != 1 || !strings.Contains(c[0], "fixed=10.30.0.91") {
		t.Fatalf("a new fixed address: engine calls %v", c)
	}
	if msg := w.fails("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID, Address: "10.99.0.1"}); !strings.Contains(msg, "not in the network's subnet") {
		t.Fatalf("an address outside the subnet: %q", msg)
	}
	addr, join := w.start(netA, poolID, ep1, "10.30.0.90")
	if addr != "10.30.0.90/24" || len(w.eng.called("Plumb ")) != 0 {
		t.Fatalf("address %s, calls %v: want the reserved, plumbed port", addr, w.eng.calls)
	}
	if gw, has := join["Gateway"]; has && gw != "" {
		t.Fatalf("a secondary interface got the gateway %v", gw)
	}
	if msg := w.fails("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID, Address: "10.30.0.90"}); !strings.Contains(msg, "in use") {
		t.Fatalf("an address in use: %q", msg)
	}
}

// A release the agent's crash interrupted is finished by the next reconciliation.
func TestInterruptedReleaseIsFinished(t *testing.T) {
	w := newWarmRig(t)
	w.network(netA, "10.30.0.0/24", "", nil, nil)
	now := time.Now().UTC()
	err := w.store.Update(context.Background(), func(st *state.State) error {
		st.Attachments["rel"] = &state.Attachment{ID: "rel", Owner: "rel", OwnerKind: state.OwnerReleasing, NetworkID: "n",
			VLAN: 951, PortID: "port-rel", Phase: state.PhaseReady, Created: now, Updated: now}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := <-w.released; got != "rel" {
		t.Fatalf("released %s", got)
	}
}

func TestPoolOptions(t *testing.T) {
	for _, tc := range []struct {
		opts     map[string]string
		min, max int
		err      string
	}{
		{map[string]string{}, 0, 0, ""},
		{map[string]string{OptPoolMin: "5"}, 5, 10, ""},
		{map[string]string{OptPoolMin: "5", OptPoolMax: "5"}, 5, 5, ""},
		{map[string]string{OptPoolMax: "5"}, 0, 0, "needs pool.min"},
		{map[string]string{OptPoolMin: "0"}, 0, 0, "from 1 to 1000"},
		{map[string]string{OptPoolMin: "x"}, 0, 0, "from 1 to 1000"},
		{map[string]string{OptPoolMin: "5", OptPoolMax: "4"}, 0, 0, "from pool.min (5)"},
	} {
		min, max, err := parsePoolOptions(tc.opts)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: %v, want %q", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || min != tc.min || max != tc.max {
			t.Errorf("%v: %d %d %v, want %d %d", tc.opts, min, max, err, tc.min, tc.max)
		}
	}
}

// Docker removes a network only once no container is on it: ports still parked for its
// containers go with it, and the Neutron network the plugin made can be deleted.
func TestNetworkRemovalReleasesParkedPorts(t *testing.T) {
	w := newWarmRig(t)
	poolID, _, _ := w.network(netA, "10.30.0.0/24", "", nil, nil)
	addr, _ := w.start(netA, poolID, ep1, "")
	var id string
	for k := range w.state().Attachments {
		id = k
	}
	if err := w.eng.Label(context.Background(), id, "c1", "c1"); err != nil {
		t.Fatal(err)
	}
	w.dk.setContainer(docker.Info{ID: "c1"})
	w.dk.set(docker.Network{ID: netA, Name: "LS1", Driver: "ovn", Endpoints: []docker.Endpoint{{ID: ep1, Container: "c1", Name: "c1", IPv4: addr}}})
	w.stop(netA, poolID, ep1, addr)
	w.settle()
	if a := w.att(id); a.OwnerKind != state.OwnerParked {
		t.Fatalf("not parked: %+v", a)
	}
	w.ok("NetworkDriver.DeleteNetwork", networkRequest{NetworkID: netA})
	if d := w.eng.called("Detach "); len(d) != 1 || d[0] != "Detach "+id {
		t.Fatalf("Detach calls %v, want the parked port's", d)
	}
	if len(w.state().Attachments) != 0 {
		t.Fatalf("left: %+v", w.state().Attachments)
	}
}

// Docker releases an address alike when a container stops and when it is disconnected
// from the network while it runs: the port is kept for a stopped container only.
func TestDisconnectReleasesThePort(t *testing.T) {
	for _, tc := range []struct {
		name string
		info *docker.Info // nil: the container is gone
		kept bool
	}{
		{"stopped", &docker.Info{ID: "c1"}, true},
		{"running, disconnected", &docker.Info{ID: "c1", Running: true}, false},
		{"running, connected again", &docker.Info{ID: "c1", Running: true, Networks: []string{netA}}, true},
		{"removed", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWarmRig(t)
			poolID, _, _ := w.network(netA, "10.30.0.0/24", "", nil, nil)
			addr, _ := w.start(netA, poolID, ep1, "")
			var id string
			for k := range w.state().Attachments {
				id = k
			}
			// Docker shows the container on the network: the plugin learns it.
			w.dk.set(docker.Network{ID: netA, Name: "LS1", Driver: "ovn", Endpoints: []docker.Endpoint{{ID: ep1, Container: "c1", Name: "c1", IPv4: addr}}})
			w.settle()
			if tc.info != nil {
				w.dk.setContainer(*tc.info)
			}
			w.stop(netA, poolID, ep1, addr)
			w.settle()
			a := w.state().Attachments[id]
			if tc.kept && (a == nil || a.OwnerKind != state.OwnerParked) {
				t.Fatalf("not kept: %+v", a)
			}
			if !tc.kept {
				// settle waited for the plugin's background work, the release with it.
				select {
				case got := <-w.released:
					if got != id {
						t.Fatalf("released %s, want %s", got, id)
					}
				default:
					t.Fatalf("not released: %+v", a)
				}
			}
		})
	}
}
