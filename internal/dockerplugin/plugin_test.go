package dockerplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
	"github.com/ovn-docker/ovn-docker/internal/testutil/scratch"
)

type rig struct {
	t     *testing.T
	p     *Plugin
	h     http.Handler
	eng   *fakeEngine
	nc    *fakeNeutron
	dk    *fakeDocker
	host  *fakeHost
	store *state.Store

	mu  sync.Mutex
	now time.Time
}

func newRig(t *testing.T) *rig {
	t.Helper()
	// The plugin's background work writes the state: scratch says so if it outlives the test.
	st, err := state.Open(scratch.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, store: st, eng: newFakeEngine(st), nc: newFakeNeutron(), dk: &fakeDocker{},
		host: &fakeHost{gone: map[string]bool{}, noOVS: map[string]bool{}}, now: time.Now()}
	r.p, err = New(Config{Name: "ovn", Engine: r.eng, Neutron: r.nc, Docker: r.dk, Host: r.host,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.p.Close)
	r.h = r.p.Handler()
	return r
}

func (r *rig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *rig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// call posts a request (a value, or a raw JSON string) and returns the status and body.
func (r *rig) call(method string, req any) (int, []byte) {
	r.t.Helper()
	var body []byte
	switch v := req.(type) {
	case string:
		body = []byte(v)
	case nil:
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			r.t.Fatal(err)
		}
	}
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/"+method, bytes.NewReader(body)))
	if ct := w.Header().Get("Content-Type"); ct != contentType {
		r.t.Fatalf("%s: Content-Type %q", method, ct)
	}
	return w.Code, w.Body.Bytes()
}

// ok calls and fails the test unless the call succeeded; it returns the decoded answer.
func (r *rig) ok(method string, req any) map[string]any {
	r.t.Helper()
	code, body := r.call(method, req)
	if code != http.StatusOK {
		r.t.Fatalf("%s: HTTP %d %s", method, code, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		r.t.Fatalf("%s: answer %q: %v", method, body, err)
	}
	if _, has := out["Err"]; has {
		r.t.Fatalf("%s: success with Err: %s", method, body)
	}
	return out
}

// fails calls and fails the test unless the call failed the way Docker reads failures:
// a non-200 status and a body that is exactly {"Err": one line}.
func (r *rig) fails(method string, req any) string {
	r.t.Helper()
	code, body := r.call(method, req)
	if code == http.StatusOK {
		r.t.Fatalf("%s succeeded: %s", method, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		r.t.Fatalf("%s: error body %q is not JSON: %v", method, body, err)
	}
	msg, ok := out["Err"].(string)
	if !ok || len(out) != 1 || msg == "" || strings.Contains(msg, "\n") {
		r.t.Fatalf("%s: error body %s is not {\"Err\": one line}", method, body)
	}
	return msg
}

// network makes a Docker network the way Docker does: RequestPool, the gateway's
// RequestAddress, then CreateNetwork. It returns the pool's ID, CIDR and gateway (CIDR).
func (r *rig) network(id, subnet, gateway string, ipamOpts, driverOpts map[string]string) (string, string, string) {
	r.t.Helper()
	pool := r.ok("IpamDriver.RequestPool", requestPoolRequest{AddressSpace: LocalAddressSpace, Pool: subnet, Options: ipamOpts})
	poolID, cidr := pool["PoolID"].(string), pool["Pool"].(string)
	gw := r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID, Address: gateway,
		Options: map[string]string{optAddressType: addressGateway}})["Address"].(string)
	opts := map[string]any{"com.docker.network.enable_ipv6": false}
	if driverOpts != nil {
		g := map[string]any{}
		for k, v := range driverOpts {
			g[k] = v
		}
		opts[optGeneric] = g
	}
	r.ok("NetworkDriver.CreateNetwork", createNetworkRequest{NetworkID: id, Options: opts,
		IPv4Data: []ipamData{{AddressSpace: LocalAddressSpace, Pool: cidr, Gateway: gw}}})
	return poolID, cidr, gw
}

func (r *rig) state() *state.State {
	r.t.Helper()
	var out *state.State
	if err := r.store.View(context.Background(), func(st *state.State) error { out = st; return nil }); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// settle waits until the plugin's background work (learning a network's name, labelling
// an endpoint's port) has ended: each piece ends once Docker shows what it waits for.
func (r *rig) settle() {
	r.p.bg.Wait()
}

// onLockWait tells f of each key a call queues on because another call holds it.
func (r *rig) onLockWait(f func(key string)) {
	r.p.locks.mu.Lock()
	defer r.p.locks.mu.Unlock()
	r.p.locks.onWait = f
}

const netA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestHandshakeAndCapabilities(t *testing.T) {
	r := newRig(t)
	got := r.ok("Plugin.Activate", nil)
	impl, _ := got["Implements"].([]any)
	if len(impl) != 2 || impl[0] != "NetworkDriver" || impl[1] != "IpamDriver" {
		t.Fatalf("Activate: %v", got)
	}
	if c := r.ok("NetworkDriver.GetCapabilities", nil); c["Scope"] != "local" || c["ConnectivityScope"] != "local" {
		t.Fatalf("capabilities: %v", c)
	}
	if c := r.ok("IpamDriver.GetCapabilities", nil); c["RequiresMACAddress"] != false || c["RequiresRequestReplay"] != false {
		t.Fatalf("IPAM capabilities: %v", c)
	}
	if s := r.ok("IpamDriver.GetDefaultAddressSpaces", nil); s["LocalDefaultAddressSpace"] != LocalAddressSpace || s["GlobalDefaultAddressSpace"] != GlobalAddressSpace {
		t.Fatalf("address spaces: %v", s)
	}
	for _, m := range []string{"NetworkDriver.DiscoverNew", "NetworkDriver.DiscoverDelete", "NetworkDriver.ProgramExternalConnectivity",
		"NetworkDriver.RevokeExternalConnectivity", "NetworkDriver.Leave"} {
		if got := r.ok(m, `{"NetworkID":"n","EndpointID":"e","DiscoveryType":1}`); len(got) != 0 {
			t.Fatalf("%s answered %v, want {}", m, got)
		}
	}
}

func TestUnknownMethodIs404AndErrorsAreOneLine(t *testing.T) {
	r := newRig(t)
	code, body := r.call("NetworkDriver.AllocateNetwork", `{}`)
	if code != http.StatusNotFound || !strings.Contains(string(body), `"Err"`) {
		t.Fatalf("unknown method: HTTP %d %s", code, body)
	}
	if msg := r.fails("IpamDriver.RequestAddress", requestAddressRequest{PoolID: "nope"}); !strings.Contains(msg, "unknown pool nope") {
		t.Fatalf("unknown pool: %q", msg)
	}
	if msg := r.fails("NetworkDriver.CreateNetwork", `{"NetworkID":`); !strings.Contains(msg, "malformed request") {
		t.Fatalf("malformed JSON: %q", msg)
	}
	// Docker's retry of a call cut off by a plugin restart comes without its body: it is
	// refused, never taken for a request about nothing.
	for _, m := range []string{"IpamDriver.RequestAddress", "IpamDriver.ReleaseAddress", "NetworkDriver.DeleteEndpoint", "NetworkDriver.CreateEndpoint"} {
		if msg := r.fails(m, ""); !strings.Contains(msg, "empty request") {
			t.Fatalf("%s without a body: %q", m, msg)
		}
	}
	// An engine error of several lines reaches Docker as one.
	r.network(netA, "", "", nil, nil)
	r.eng.fail["Prepare"] = errBoom
	pool := r.state().DockerNetworks[netA].Pool
	if msg := r.fails("IpamDriver.RequestAddress", requestAddressRequest{PoolID: pool}); msg != "boom second line" {
		t.Fatalf("engine error: %q", msg)
	}
}

// TestLifecycle follows Docker through a network made by the plugin: create, a container
// on it, removal; each call's effect on the engine and Neutron, and a clean state after.
func TestLifecycle(t *testing.T) {
	r := newRig(t)
	poolID, cidr, gw := r.network(netA, "", "", nil, nil)
	created := r.nc.called("CreateNetwork ")
	if len(created) != 1 || !strings.HasPrefix(created[0], "CreateNetwork docker-pool-"+poolID+" "+cidr) {
		t.Fatalf("Neutron calls: %v (pool %s %s)", created, poolID, cidr)
	}
	if gw != strings.Replace(cidr, ".0/", ".1/", 1) {
		t.Fatalf("gateway %s for %s: want the subnet's", gw, cidr)
	}
	st := r.state()
	rec, pool := st.DockerNetworks[netA], st.DockerPools[poolID]
	if rec == nil || pool == nil || !pool.Created || pool.Network != netA || rec.NeutronNetwork != pool.NeutronNetwork {
		t.Fatalf("records: %+v %+v", rec, pool)
	}
	neutronID := pool.NeutronNetwork
	if tags := r.nc.called("TagNetwork " + neutronID); len(tags) != 1 || !strings.Contains(tags[0], TagDockerNetwork+netA) {
		t.Fatalf("tags: %v", tags)
	}
	// Once Docker shows the network, the Neutron network takes its name.
	r.dk.set(docker.Network{ID: netA, Name: "LS1", Driver: "ovn"})
	r.settle()
	if n := r.nc.byName("LS1"); n == nil || n.ID != neutronID {
		t.Fatalf("renamed %+v, want %s", n, neutronID)
	}
	if name := r.state().DockerNetworks[netA].Name; name != "LS1" {
		t.Fatalf("recorded name %q, want LS1", name)
	}

	// A container: its address is a prepared Neutron port, at rest, held by the pool.
	addr := r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID})["Address"].(string)
	st = r.state()
	if len(st.Attachments) != 1 {
		t.Fatalf("attachments after RequestAddress: %+v", st.Attachments)
	}
	var att *state.Attachment
	for _, a := range st.Attachments {
		att = a
	}
	if att.Owner != "ipam:"+poolID || att.IPs[0] != addr || att.Phase != state.PhasePrepared {
		t.Fatalf("prepared attachment %+v for %s", att, addr)
	}
	const ep = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	code, body := r.call("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: netA, EndpointID: ep,
		Interface: &endpointInterface{Address: addr}})
	if code != http.StatusOK || strings.Contains(string(body), "Interface") {
		t.Fatalf("CreateEndpoint: HTTP %d %s (must not return an Interface: Docker gave the address)", code, body)
	}
	if p := r.eng.called("Plumb "); len(p) != 1 || p[0] != "Plumb "+att.ID+" "+ep {
		t.Fatalf("Plumb calls: %v", p)
	}
	// A repeated CreateEndpoint (an answer lost) changes nothing.
	r.ok("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: netA, EndpointID: ep, Interface: &endpointInterface{Address: addr}})
	if p := r.eng.called("Plumb "); len(p) != 1 {
		t.Fatalf("repeated CreateEndpoint plumbed again: %v", p)
	}
	info := r.ok("NetworkDriver.EndpointOperInfo", endpointRequest{NetworkID: netA, EndpointID: ep})["Value"].(map[string]any)
	if info["neutron_port"] != att.PortID {
		t.Fatalf("EndpointOperInfo: %v", info)
	}
	join := r.ok("NetworkDriver.Join", joinRequest{NetworkID: netA, EndpointID: ep, SandboxKey: "/var/run/docker/netns/x"})
	iface, _ := join["InterfaceName"].(map[string]any)
	if iface["SrcName"] != "odc"+att.ID || iface["DstPrefix"] != "eth" || join["Gateway"] != strings.Split(gw, "/")[0] {
		t.Fatalf("Join: %v", join)
	}
	// Docker shows the container: the port is labelled with it.
	r.dk.set(docker.Network{ID: netA, Name: "LS1", Driver: "ovn", Endpoints: []docker.Endpoint{{ID: ep, Container: "c0ffee", Name: "web", IPv4: addr}}})
	r.settle()
	if l := r.eng.called("Label "); len(l) != 1 || l[0] != "Label "+att.ID+" c0ffee web" {
		t.Fatalf("labels %v, want the container's", l)
	}

	// The container stops (it still exists, it runs no more).
	r.dk.setContainer(docker.Info{ID: "c0ffee"})
	for i := 0; i < 2; i++ {
		r.ok("NetworkDriver.Leave", endpointRequest{NetworkID: netA, EndpointID: ep})
		r.ok("NetworkDriver.DeleteEndpoint", endpointRequest{NetworkID: netA, EndpointID: ep})
	}
	// Docker took the container end back: the pair stays whole, held by the IPAM.
	if u := r.eng.called("Unplumb "); len(u) != 0 {
		t.Fatalf("DeleteEndpoint unplumbed: %v (the pair stays for the port's next use)", u)
	}
	if a := r.state().Attachments[att.ID]; a.Owner != "ipam:"+poolID || a.HostIf == "" {
		t.Fatalf("after DeleteEndpoint: %+v, want the plumbed port held by the IPAM", a)
	}
	r.ok("NetworkDriver.DeleteEndpoint", endpointRequest{NetworkID: netA, EndpointID: "unknown"})
	r.ok("NetworkDriver.Leave", endpointRequest{NetworkID: netA, EndpointID: "unknown"})
	for i := 0; i < 2; i++ {
		r.ok("IpamDriver.ReleaseAddress", releaseAddressRequest{PoolID: poolID, Address: strings.Split(addr, "/")[0]})
	}
	r.ok("IpamDriver.ReleaseAddress", releaseAddressRequest{PoolID: poolID, Address: strings.Split(gw, "/")[0]})
	// The container only stopped, as far as the plugin knows: its port waits for it.
	r.settle() // the plugin asks Docker whether the container stopped or left the network
	if a := r.state().Attachments[att.ID]; a == nil || a.Owner != "c0ffee" || a.OwnerKind != state.OwnerParked || a.IPAMPool != poolID {
		t.Fatalf("after ReleaseAddress: %+v, want parked for c0ffee", a)
	}
	if d := r.eng.called("Detach "); len(d) != 0 {
		t.Fatalf("a stopped container's port was released: %v", d)
	}
	// Its removal releases it.
	if err := r.p.ReleaseParked(context.Background(), "c0ffee"); err != nil {
		t.Fatal(err)
	}
	if d := r.eng.called("Detach "); len(d) != 1 || d[0] != "Detach "+att.ID {
		t.Fatalf("removal: Detach calls %v, want one of %s (the gateway is no port)", d, att.ID)
	}

	r.ok("NetworkDriver.DeleteNetwork", networkRequest{NetworkID: netA})
	if r.nc.byName("LS1") != nil || len(r.nc.called("DeleteNetwork "+neutronID)) != 1 {
		t.Fatalf("the Neutron network the plugin made is not deleted: %v", r.nc.calls)
	}
	r.ok("IpamDriver.ReleaseAddress", releaseAddressRequest{PoolID: poolID, Address: strings.Split(gw, "/")[0]})
	r.ok("IpamDriver.ReleasePool", releasePoolRequest{PoolID: poolID})
	r.ok("IpamDriver.ReleasePool", releasePoolRequest{PoolID: poolID})
	r.ok("NetworkDriver.DeleteNetwork", networkRequest{NetworkID: netA})
	st = r.state()
	if len(st.Attachments)+len(st.DockerNetworks)+len(st.DockerPools) != 0 {
		t.Fatalf("left in the state: %+v %+v %+v", st.Attachments, st.DockerNetworks, st.DockerPools)
	}
	if n := len(r.nc.called("DeleteNetwork ")); n != 1 {
		t.Fatalf("DeleteNetwork called %d times, want 1", n)
	}
}

// A port no attachment records (a killed daemon's, which Neutron finished making after
// the daemon died) does not keep a network the plugin made from being deleted; a port of
// a container does, and the network then stays with its records.
func TestDeleteNetworkWithOrphanedPort(t *testing.T) {
	r := newRig(t)
	poolID, _, _ := r.network(netA, "", "", nil, nil)
	n := r.nc.nets[r.state().DockerPools[poolID].NeutronNetwork]
	if n == nil {
		t.Fatal("no Neutron network made")
	}
	r.nc.hold(n.ID, 1)
	r.eng.orphans = func(id string) int {
		if id != n.ID {
			return 0
		}
		r.nc.hold(id, 0)
		return 1
	}
	r.ok("NetworkDriver.DeleteNetwork", networkRequest{NetworkID: netA})
	if r.nc.nets[n.ID] != nil {
		t.Fatalf("the network stays: %v", r.nc.calls)
	}
	if c := r.eng.called("DeleteOrphanPorts "); len(c) != 1 || c[0] != "DeleteOrphanPorts "+n.ID {
		t.Fatalf("orphans deleted by %v, want once for %s", c, n.ID)
	}
	r.ok("IpamDriver.ReleasePool", releasePoolRequest{PoolID: poolID})

	// A container's port: no orphan to delete, the network stays and so does the
	// plugin's record of it, for the reconciler to try again.
	r2 := newRig(t)
	poolID, _, _ = r2.network(netA, "", "", nil, nil)
	n = r2.nc.nets[r2.state().DockerPools[poolID].NeutronNetwork]
	r2.nc.hold(n.ID, 1)
	msg := r2.fails("IpamDriver.ReleasePool", releasePoolRequest{PoolID: poolID})
	if !strings.Contains(msg, "in use") {
		t.Fatalf("ReleasePool of a network in use: %q", msg)
	}
	if r2.nc.nets[n.ID] == nil || r2.state().DockerPools[poolID] == nil {
		t.Fatal("the network in use, or the pool's record, is gone")
	}
	if c := r2.nc.called("DeleteNetwork "); len(c) != 1 {
		t.Fatalf("DeleteNetwork calls %v: with no orphan deleted there is nothing to try again", c)
	}
}

func TestAdoptedNetworkIsNotDeleted(t *testing.T) {
	r := newRig(t)
	ext := r.nc.add("ext", "192.168.7.0/24", "192.168.7.254")
	opts := map[string]string{OptNetName: "ext"}
	poolID, cidr, gw := r.network(netA, "", "", opts, opts)
	if cidr != "192.168.7.0/24" || gw != "192.168.7.254/24" {
		t.Fatalf("adopted pool %s gateway %s", cidr, gw)
	}
	if c := r.nc.called("CreateNetwork"); len(c) != 0 {
		t.Fatalf("adoption created a network: %v", c)
	}
	if pool := r.state().DockerPools[poolID]; pool.Created || pool.NeutronNetwork != ext.ID {
		t.Fatalf("pool %+v", pool)
	}
	// Docker names it: an adopted network keeps its Neutron name.
	r.dk.set(docker.Network{ID: netA, Name: "mine", Driver: "ovn"})
	r.settle()
	if name := r.state().DockerNetworks[netA].Name; name != "mine" {
		t.Fatalf("recorded name %q, want mine", name)
	}
	if c := r.nc.called("RenameNetwork"); len(c) != 0 {
		t.Fatalf("adopted network renamed: %v", c)
	}
	r.ok("NetworkDriver.DeleteNetwork", networkRequest{NetworkID: netA})
	r.ok("IpamDriver.ReleasePool", releasePoolRequest{PoolID: poolID})
	if c := r.nc.called("DeleteNetwork"); len(c) != 0 || r.nc.byName("ext") == nil {
		t.Fatalf("adopted network deleted: %v", c)
	}
}

func TestAdoptBySubnetAndByID(t *testing.T) {
	r := newRig(t)
	ext := r.nc.add("ext", "192.168.8.0/24", "192.168.8.1")
	_, cidr, _ := r.network(netA, "", "", map[string]string{OptSubnetID: ext.Subnets[0].ID}, map[string]string{OptNetID: ext.ID})
	if cidr != "192.168.8.0/24" {
		t.Fatalf("pool %s", cidr)
	}
	// --subnet must be the adopted subnet's.
	msg := r.fails("IpamDriver.RequestPool", requestPoolRequest{Pool: "10.1.0.0/24", Options: map[string]string{OptNetName: "ext"}})
	if !strings.Contains(msg, "no IPv4 subnet 10.1.0.0/24") {
		t.Fatalf("mismatching --subnet: %q", msg)
	}
	if msg := r.fails("IpamDriver.RequestPool", requestPoolRequest{Options: map[string]string{"neutron.net.nmae": "ext"}}); !strings.Contains(msg, "unknown option neutron.net.nmae") {
		t.Fatalf("typo: %q", msg)
	}
	if msg := r.fails("IpamDriver.RequestPool", requestPoolRequest{Options: map[string]string{OptNetName: "nope"}}); !strings.Contains(msg, "not found") {
		t.Fatalf("missing network: %q", msg)
	}
}

// TestDriverAdoptionMustMatchPool: -o naming one network while the IPAM made another is
// refused, and Docker's rollback (ReleasePool) deletes what the IPAM made.
func TestDriverAdoptionMustMatchPool(t *testing.T) {
	r := newRig(t)
	r.nc.add("ext", "192.168.9.0/24", "192.168.9.1")
	pool := r.ok("IpamDriver.RequestPool", requestPoolRequest{AddressSpace: LocalAddressSpace})
	poolID, cidr := pool["PoolID"].(string), pool["Pool"].(string)
	gw := r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID, Options: map[string]string{optAddressType: addressGateway}})["Address"].(string)
	msg := r.fails("NetworkDriver.CreateNetwork", createNetworkRequest{NetworkID: netA,
		Options:  map[string]any{optGeneric: map[string]any{OptNetName: "ext"}},
		IPv4Data: []ipamData{{AddressSpace: LocalAddressSpace, Pool: cidr, Gateway: gw}}})
	if !strings.Contains(msg, "--ipam-opt neutron.net.name=ext") {
		t.Fatalf("mismatch: %q", msg)
	}
	made := r.state().DockerPools[poolID].NeutronNetwork
	r.ok("IpamDriver.ReleaseAddress", releaseAddressRequest{PoolID: poolID, Address: strings.Split(gw, "/")[0]})
	r.ok("IpamDriver.ReleasePool", releasePoolRequest{PoolID: poolID})
	if d := r.nc.called("DeleteNetwork " + made); len(d) != 1 {
		t.Fatalf("the IPAM's network was not deleted on ReleasePool: %v", r.nc.calls)
	}
	if st := r.state(); len(st.DockerPools)+len(st.DockerNetworks) != 0 {
		t.Fatalf("records left: %+v %+v", st.DockerPools, st.DockerNetworks)
	}
}

// TestSubnetAndGatewayGiven: with --subnet and --gateway the Neutron network is made at
// CreateNetwork, with both.
func TestSubnetAndGatewayGiven(t *testing.T) {
	r := newRig(t)
	pool := r.ok("IpamDriver.RequestPool", requestPoolRequest{AddressSpace: LocalAddressSpace, Pool: "10.5.0.0/24"})
	if c := r.nc.called("CreateNetwork"); len(c) != 0 {
		t.Fatalf("network made before CreateNetwork: %v", c)
	}
	if msg := r.fails("IpamDriver.RequestAddress", requestAddressRequest{PoolID: pool["PoolID"].(string), Address: "10.6.0.1",
		Options: map[string]string{optAddressType: addressGateway}}); !strings.Contains(msg, "not a host address") {
		t.Fatalf("gateway outside: %q", msg)
	}
	r.fails("IpamDriver.RequestPool", requestPoolRequest{Pool: "10.5.0.1/24"})
	r.fails("IpamDriver.RequestPool", requestPoolRequest{Pool: "fd00::/64"})
	_, cidr, gw := r.network(netA, "10.5.0.0/24", "10.5.0.254", nil, nil)
	if cidr != "10.5.0.0/24" || gw != "10.5.0.254/24" {
		t.Fatalf("pool %s gateway %s", cidr, gw)
	}
	if c := r.nc.called("CreateNetwork"); len(c) != 1 || c[0] != "CreateNetwork docker-"+netA[:12]+" 10.5.0.0/24 10.5.0.254" {
		t.Fatalf("Neutron calls: %v", c)
	}
}

func TestRefusals(t *testing.T) {
	r := newRig(t)
	poolID, cidr, gw := r.network(netA, "", "", nil, nil)
	for _, tc := range []struct {
		method string
		req    any
		want   string
	}{
		{"IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID, Address: "10.11.1.50"}, "not in the network's subnet"},
		{"IpamDriver.RequestPool", requestPoolRequest{V6: true}, "needs its IPv6 range"},
		{"IpamDriver.RequestPool", requestPoolRequest{V6: true, Pool: "10.9.0.0/24"}, "not an IPv6 network"},
		{"IpamDriver.RequestPool", requestPoolRequest{Pool: "10.9.0.0/24", SubPool: "10.8.0.0/25"}, "--ip-range 10.8.0.0/25 is not inside the subnet 10.9.0.0/24"},
		{"NetworkDriver.CreateNetwork", createNetworkRequest{NetworkID: "b", IPv4Data: []ipamData{{AddressSpace: "LocalDefault", Pool: "172.18.0.0/16", Gateway: "172.18.0.1/16"}}}, "--ipam-driver ovn"},
		{"NetworkDriver.CreateNetwork", createNetworkRequest{NetworkID: "b", IPv4Data: []ipamData{{AddressSpace: LocalAddressSpace, Pool: cidr, Gateway: gw}}, IPv6Data: []ipamData{{Pool: "fd00::/64", Gateway: "fd00::1/64"}}}, "no pool"},
		{"NetworkDriver.CreateNetwork", createNetworkRequest{NetworkID: "b", IPv4Data: []ipamData{{AddressSpace: LocalAddressSpace, Pool: "10.99.0.0/24", Gateway: "10.99.0.1/24"}}}, "no pool 10.99.0.0/24"},
		{"NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: "unknown", EndpointID: "e", Interface: &endpointInterface{Address: "10.0.0.5/24"}}, "not a network of the ovn driver"},
		{"NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: netA, EndpointID: "e", Interface: &endpointInterface{Address: "10.10.1.77/24"}}, "not handed out"},
		{"NetworkDriver.Join", joinRequest{NetworkID: netA, EndpointID: "e"}, "unknown endpoint"},
	} {
		if msg := r.fails(tc.method, tc.req); !strings.Contains(msg, tc.want) {
			t.Errorf("%s %+v: %q, want %q", tc.method, tc.req, msg, tc.want)
		}
	}
	if p := r.eng.called("Prepare"); len(p) != 0 {
		t.Fatalf("a refused request reached the engine: %v", p)
	}
}

// TestCreateEndpointRefusesAnotherMAC: port security only passes Neutron's MAC, so a
// --mac-address is refused before anything is plumbed; Docker then releases the address.
func TestCreateEndpointRefusesAnotherMAC(t *testing.T) {
	r := newRig(t)
	poolID, _, _ := r.network(netA, "", "", nil, nil)
	addr := r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID})["Address"].(string)
	msg := r.fails("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: netA, EndpointID: "e1",
		Interface: &endpointInterface{Address: addr, MacAddress: "02:42:ac:11:00:02"}})
	if !strings.Contains(msg, "fa:16:3e:00:00:01") || !strings.Contains(msg, "--mac-address") {
		t.Fatalf("other MAC: %q", msg)
	}
	if p := r.eng.called("Plumb"); len(p) != 0 {
		t.Fatalf("plumbed despite the MAC: %v", p)
	}
	// Neutron's own MAC, in another spelling, is fine.
	r.ok("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: netA, EndpointID: "e1",
		Interface: &endpointInterface{Address: addr, MacAddress: "FA:16:3E:00:00:01"}})
}

// TestAddressOutsideThePoolIsReleased: a port whose address is not in the pool's subnet
// (the network has several) is released and refused.
func TestAddressOutsideThePoolIsReleased(t *testing.T) {
	r := newRig(t)
	poolID, _, _ := r.network(netA, "", "", nil, nil)
	r.eng.ipsFor = func(*neutron.Network, int) []string { return []string{"172.31.0.9/24"} }
	msg := r.fails("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID})
	if !strings.Contains(msg, "none in the pool's subnet") {
		t.Fatalf("outside address: %q", msg)
	}
	if d := r.eng.called("Detach"); len(d) != 1 || len(r.state().Attachments) != 0 {
		t.Fatalf("the unusable port was not released: %v %+v", d, r.state().Attachments)
	}
}

// TestEndpointsProceedConcurrently: two endpoints plumb at the same time, while calls
// for one endpoint never overlap.
func TestEndpointsProceedConcurrently(t *testing.T) {
	r := newRig(t)
	waits := make(chan string, 100)
	r.onLockWait(func(key string) { waits <- key })
	poolID, _, _ := r.network(netA, "", "", nil, nil)
	a1 := r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID})["Address"].(string)
	a2 := r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID})["Address"].(string)
	var inside, most atomic.Int32
	enter := func() int32 {
		n := inside.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		return n
	}
	// Each Plumb waits until the other endpoint's is inside too; the other endpoint's
	// call queueing behind this one on a lock fails the test instead.
	both := make(chan struct{})
	var once sync.Once
	r.eng.onPlumb = func(string) {
		if enter() == 2 {
			once.Do(func() { close(both) })
		}
		select {
		case <-both:
		case key := <-waits:
			t.Errorf("an endpoint's call waits for %s, held by the other endpoint's", key)
			once.Do(func() { close(both) })
		}
		inside.Add(-1)
	}
	var wg sync.WaitGroup
	for i, a := range []string{a1, a2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.call("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: netA, EndpointID: "e" + string(rune('1'+i)), Interface: &endpointInterface{Address: a}})
		}()
	}
	wg.Wait()
	if most.Load() != 2 {
		t.Fatalf("two endpoints did not plumb at the same time (at most %d at once)", most.Load())
	}

	// One endpoint: Joins that must re-plumb run one after the other. The first Plumb
	// returns only once the two other Joins queue behind it on the endpoint's lock, or
	// one of them plumbs beside it.
	inside.Store(0)
	most.Store(0)
	var first atomic.Bool
	overlap := make(chan struct{})
	var overlapOnce sync.Once
	r.eng.onPlumb = func(string) {
		if enter() > 1 {
			overlapOnce.Do(func() { close(overlap) })
		}
		if first.CompareAndSwap(false, true) {
			for queued := 0; queued < 2; {
				select {
				case key := <-waits:
					if key == epKey("e1") {
						queued++
					}
				case <-overlap:
					queued = 2
				}
			}
		}
		inside.Add(-1)
	}
	r.host.reset()
	for _, a := range r.state().Attachments {
		if a.Owner == "e1" {
			r.host.lose(a.PeerIf, "")
		}
	}
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.call("NetworkDriver.Join", joinRequest{NetworkID: netA, EndpointID: "e1"})
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("calls for one endpoint overlapped (%d at once)", most.Load())
	}
	if p := r.eng.called("Plumb "); len(p) != 2+3 {
		t.Fatalf("Plumb calls %v, want one per endpoint and one per Join", p)
	}
}

// TestJoinRemakesALostPair: a pair that is gone (a restarted container lost it) is made
// again before Docker is told its name.
func TestJoinRemakesALostPair(t *testing.T) {
	r := newRig(t)
	poolID, _, _ := r.network(netA, "", "", nil, nil)
	addr := r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID})["Address"].(string)
	r.ok("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: netA, EndpointID: "e1", Interface: &endpointInterface{Address: addr}})
	r.ok("NetworkDriver.Join", joinRequest{NetworkID: netA, EndpointID: "e1"})
	if u := r.eng.called("Unplumb"); len(u) != 0 {
		t.Fatalf("Join of a healthy pair re-plumbed: %v", u)
	}
	var att *state.Attachment
	for _, a := range r.state().Attachments {
		att = a
	}
	r.host.lose(att.HostIf, "")
	join := r.ok("NetworkDriver.Join", joinRequest{NetworkID: netA, EndpointID: "e1"})
	if u, p := r.eng.called("Unplumb"), r.eng.called("Plumb"); len(u) != 1 || len(p) != 2 {
		t.Fatalf("lost pair: Unplumb %v Plumb %v", u, p)
	}
	if join["InterfaceName"].(map[string]any)["SrcName"] != att.PeerIf {
		t.Fatalf("Join: %v", join)
	}
}

// TestReconcile: what Docker has keeps (or gets back) its plumbing; what it does not
// know is released once older than the grace period; nothing is released when Docker
// does not answer.
func TestReconcile(t *testing.T) {
	r := newRig(t)
	poolA, _, _ := r.network(netA, "", "", nil, nil)
	const netB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	poolB, _, _ := r.network(netB, "", "", nil, nil)
	nB := r.state().DockerPools[poolB].NeutronNetwork
	addr := func(pool string) string {
		return r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: pool})["Address"].(string)
	}
	endpoint := func(ep, a string) {
		r.ok("NetworkDriver.CreateEndpoint", createEndpointRequest{NetworkID: netA, EndpointID: ep, Interface: &endpointInterface{Address: a}})
	}
	aKeep, aVeth, aPort, aGone, aPrepared, aPending := addr(poolA), addr(poolA), addr(poolA), addr(poolA), addr(poolA), addr(poolA)
	endpoint("keep", aKeep)
	endpoint("veth", aVeth)
	endpoint("port", aPort)
	endpoint("gone", aGone)
	byOwner := map[string]*state.Attachment{}
	for _, a := range r.state().Attachments {
		byOwner[a.Owner] = a
	}
	r.host.lose(byOwner["veth"].HostIf, "")
	r.host.lose("", byOwner["port"].HostIf)
	// Docker has network A with three endpoints and the pending address's endpoint; it
	// has lost network B.
	r.dk.set(docker.Network{ID: netA, Name: "A", Driver: "ovn", Endpoints: []docker.Endpoint{
		{ID: "keep", IPv4: aKeep}, {ID: "veth", IPv4: aVeth}, {ID: "port", IPv4: aPort}, {ID: "new", IPv4: aPending}}})
	// An unbound pool (its network never came).
	orphan := r.ok("IpamDriver.RequestPool", requestPoolRequest{AddressSpace: LocalAddressSpace})["PoolID"].(string)

	// Docker does not answer: nothing happens.
	r.dk.setErr(errBoom)
	if err := r.p.Reconcile(context.Background()); err == nil {
		t.Fatal("reconcile without Docker: no error")
	}
	r.dk.setErr(nil)
	// Within the grace period, only repairs happen.
	if err := r.p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := r.eng.called("Detach"); len(d) != 0 || len(r.nc.called("DeleteNetwork")) != 0 {
		t.Fatalf("released within the grace period: %v %v", d, r.nc.calls)
	}
	if p := r.eng.called("Plumb " + byOwner["veth"].ID); len(p) != 2 {
		t.Fatalf("lost veth not made again: %v", r.eng.calls)
	}
	if p := r.eng.called("RestoreAccessPort"); len(p) != 1 || p[0] != "RestoreAccessPort "+byOwner["port"].ID {
		t.Fatalf("lost access port not restored: %v", p)
	}
	r.advance(3 * time.Minute)
	r.host.reset()
	if err := r.p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := r.state()
	left := map[string]bool{}
	for _, a := range st.Attachments {
		left[a.Owner] = true
	}
	want := map[string]bool{"keep": true, "veth": true, "port": true, "ipam:" + poolA: true} // the pending one
	if len(left) != len(want) || !left["keep"] || !left["veth"] || !left["port"] || !left["ipam:"+poolA] || len(st.Attachments) != 4 {
		t.Fatalf("attachments left %v, want %v", left, want)
	}
	for _, a := range st.Attachments {
		if a.Owner == "ipam:"+poolA && firstIP(a) != strings.Split(aPending, "/")[0] {
			t.Fatalf("kept the wrong prepared address: %+v (pending %s, unknown %s)", a, aPending, aPrepared)
		}
	}
	if st.DockerNetworks[netB] != nil || st.DockerPools[poolB] != nil || st.DockerPools[orphan] != nil || st.DockerNetworks[netA] == nil {
		t.Fatalf("records: networks %v pools %v", st.DockerNetworks, st.DockerPools)
	}
	if len(r.nc.called("DeleteNetwork "+nB)) != 1 || r.nc.has(nB) {
		t.Fatalf("network B's Neutron network not deleted: %v", r.nc.calls)
	}
}

// TestCallOutlivesDockerHangingUp: dockerd that stops mid-call (its connection closes)
// does not cut a release half-way.
func TestCallOutlivesDockerHangingUp(t *testing.T) {
	r := newRig(t)
	poolID, _, _ := r.network(netA, "", "", nil, nil)
	addr := r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID})["Address"].(string)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	body, _ := json.Marshal(releaseAddressRequest{PoolID: poolID, Address: strings.Split(addr, "/")[0]})
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/IpamDriver.ReleaseAddress", bytes.NewReader(body)).WithContext(ctx))
	if w.Code != http.StatusOK || len(r.state().Attachments) != 0 {
		t.Fatalf("release with Docker gone: HTTP %d %s, attachments %+v", w.Code, w.Body, r.state().Attachments)
	}
}

// TestMaintainCollectsAndReconciles: the periodic pass runs the engine's collector (a
// failed release is tried again) and reconciles with Docker, until stopped.
func TestMaintainCollectsAndReconciles(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	three := make(chan struct{})
	var passes atomic.Int32
	r.eng.onGC = func() {
		select {
		case <-done:
			t.Error("a pass after Maintain returned")
		default:
		}
		if passes.Add(1) == 3 {
			close(three)
		}
	}
	go func() { r.p.Maintain(ctx, 10*time.Millisecond); close(done) }()
	<-three
	cancel()
	<-done
	n := len(r.eng.called("GC"))
	// Only an extra: a pass that a goroutine left behind would start after Maintain
	// returned, and onGC reports it whenever it comes during the test.
	time.Sleep(50 * time.Millisecond)
	if len(r.eng.called("GC")) != n {
		t.Fatal("passes go on after Maintain returned")
	}
}

// TestCreateNetworkRollsBack: when CreateNetwork fails after it made the Neutron network
// (here its pool vanished meanwhile), the network is deleted again.
func TestCreateNetworkRollsBack(t *testing.T) {
	r := newRig(t)
	pool := r.ok("IpamDriver.RequestPool", requestPoolRequest{AddressSpace: LocalAddressSpace, Pool: "10.6.0.0/24"})
	poolID := pool["PoolID"].(string)
	gw := r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID, Options: map[string]string{optAddressType: addressGateway}})["Address"].(string)
	r.nc.onMake = func() {
		_ = r.store.Update(context.Background(), func(st *state.State) error {
			delete(st.DockerPools, poolID)
			return nil
		})
	}
	msg := r.fails("NetworkDriver.CreateNetwork", createNetworkRequest{NetworkID: netA,
		IPv4Data: []ipamData{{AddressSpace: LocalAddressSpace, Pool: "10.6.0.0/24", Gateway: gw}}})
	if !strings.Contains(msg, "released or taken meanwhile") {
		t.Fatalf("CreateNetwork: %q", msg)
	}
	made := r.nc.called("CreateNetwork ")
	if len(made) != 1 || r.nc.byName("docker-"+netA[:12]) != nil || len(r.nc.called("DeleteNetwork ")) != 1 {
		t.Fatalf("the network made for the failed CreateNetwork is left: %v", r.nc.calls)
	}
	if st := r.state(); len(st.DockerNetworks) != 0 {
		t.Fatalf("network record left: %+v", st.DockerNetworks)
	}
}

// TestRequestPoolRollsBack: when the pool cannot be recorded after its Neutron network
// was made (the state file is unreadable), the network is deleted again.
func TestRequestPoolRollsBack(t *testing.T) {
	r := newRig(t)
	file := filepath.Join(r.store.Dir(), "state.json")
	r.nc.onMake = func() {
		if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
			t.Error(err)
		}
	}
	msg := r.fails("IpamDriver.RequestPool", requestPoolRequest{AddressSpace: LocalAddressSpace})
	if !strings.Contains(msg, "corrupt") {
		t.Fatalf("RequestPool: %q", msg)
	}
	if made, del := r.nc.called("CreateNetwork "), r.nc.called("DeleteNetwork "); len(made) != 1 || len(del) != 1 {
		t.Fatalf("the network made for the failed pool is left: %v", r.nc.calls)
	}
}

func TestNetworkSecurityGroups(t *testing.T) {
	r := newRig(t)
	// A group the project does not have: the network is refused.
	pool := r.ok("IpamDriver.RequestPool", requestPoolRequest{AddressSpace: LocalAddressSpace, Pool: "10.8.0.0/24"})
	msg := r.fails("NetworkDriver.CreateNetwork", createNetworkRequest{NetworkID: netA,
		Options:  map[string]any{optGeneric: map[string]any{OptSecurityGroups: "web,nope"}},
		IPv4Data: []ipamData{{AddressSpace: LocalAddressSpace, Pool: "10.8.0.0/24", Gateway: "10.8.0.1/24"}}})
	if !strings.Contains(msg, `"nope"`) {
		t.Fatalf("unknown group: %q", msg)
	}
	r.ok("IpamDriver.ReleasePool", releasePoolRequest{PoolID: pool["PoolID"].(string)})
	// Given on the IPAM side, it is pointed to the driver side.
	if msg := r.fails("IpamDriver.RequestPool", requestPoolRequest{AddressSpace: LocalAddressSpace, Pool: "10.8.1.0/24",
		Options: map[string]string{OptSecurityGroups: "web"}}); !strings.Contains(msg, "-o") {
		t.Fatalf("security groups as an IPAM option: %q", msg)
	}
	// Known groups: each container port of the network is made in them.
	poolID, _, _ := r.network(strings.Repeat("b", 64), "10.8.2.0/24", "", nil, map[string]string{OptSecurityGroups: "web, db"})
	r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID})
	found := false
	for _, c := range r.eng.calls {
		if strings.HasPrefix(c, "Prepare ") && strings.HasSuffix(c, " sg=sg-web,sg-db") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the port was not made in the network's groups: %v", r.eng.calls)
	}
}

// The network's port options (-o) reach each of its container ports; what cannot go
// together is refused when the network is made.
func TestNetworkPortOptions(t *testing.T) {
	r := newRig(t)
	for opts, want := range map[string]string{
		OptPortSecurity + "=maybe":                               "true or false",
		OptAllowedAddresses + "=10.0.0.5/24":                     "not a network address",
		OptQoSPolicy + "=nope":                                   `"nope"`,
		OptPortSecurity + "=false," + OptSecurityGroups + "=web": "no security groups",
	} {
		o := map[string]any{}
		for _, kv := range strings.Split(opts, ",") {
			k, v, _ := strings.Cut(kv, "=")
			o[k] = v
		}
		pool := r.ok("IpamDriver.RequestPool", requestPoolRequest{AddressSpace: LocalAddressSpace, Pool: "10.8.0.0/24"})
		msg := r.fails("NetworkDriver.CreateNetwork", createNetworkRequest{NetworkID: netA, Options: map[string]any{optGeneric: o},
			IPv4Data: []ipamData{{AddressSpace: LocalAddressSpace, Pool: "10.8.0.0/24", Gateway: "10.8.0.1/24"}}})
		if !strings.Contains(msg, want) {
			t.Errorf("%s: %q, want it to say %q", opts, msg, want)
		}
		r.ok("IpamDriver.ReleasePool", releasePoolRequest{PoolID: pool["PoolID"].(string)})
	}
	if err := checkPortOptions(portOpts{qos: "slow"}, nil, 2); err == nil || !strings.Contains(err.Error(), OptPoolMin) {
		t.Errorf("port options with a pool: %v", err)
	}
	poolID, _, _ := r.network(strings.Repeat("c", 64), "10.8.3.0/24", "", nil, map[string]string{
		OptAllowedAddresses: "10.8.3.250, 10.8.4.0/24/fa:16:3e:00:00:01", OptQoSPolicy: "slow"})
	r.ok("IpamDriver.RequestAddress", requestAddressRequest{PoolID: poolID})
	want := "port={AllowedAddresses:[{IP:10.8.3.250 MAC:} {IP:10.8.4.0/24 MAC:fa:16:3e:00:00:01}] QoSPolicyID:qos-slow DNSName: NoPortSecurity:false}"
	found := false
	for _, c := range r.eng.calls {
		found = found || (strings.HasPrefix(c, "Prepare ") && strings.HasSuffix(c, want))
	}
	if !found {
		t.Fatalf("the port was not made with the network's options: %v", r.eng.calls)
	}
}
