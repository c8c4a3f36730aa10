// Package dockerplugin is ovn-docker's Docker network plugin: one process that is both
// Docker's remote network driver and its remote IPAM driver, so that plain docker
// commands (docker network create -d ovn --ipam-driver ovn, docker run --network,
// docker network connect) put containers on Neutron networks. It reuses the engine of the
// command line: Neutron is the IPAM, so the IPAM's RequestAddress prepares the Neutron
// port and trunk subport (engine.Prepare) and returns the port's address; the network
// driver's CreateEndpoint plumbs the veth pair and access port for that address
// (engine.Plumb, the container end left in the VM), Join hands the container end to
// Docker, DeleteEndpoint unplumbs it and ReleaseAddress releases the rest.
//
// The plugin keeps its pools and networks in the engine's state file, so that a restart
// finds them, and reconciles with Docker when it starts: what Docker still has keeps its
// plumbing, what Docker no longer knows is released.
package dockerplugin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Engine is what the plugin asks of the engine; *engine.Engine implements it.
type Engine interface {
	Prepare(ctx context.Context, req engine.Request) (*state.Attachment, error)
	Plumb(ctx context.Context, attID string, req engine.Request) (*state.Attachment, error)
	Unplumb(ctx context.Context, attID string) error
	// Readdress gives an attachment at rest another address of one family (--ip6).
	Readdress(ctx context.Context, attID string, n *neutron.Network, want netip.Addr) (*state.Attachment, error)
	Detach(ctx context.Context, attID string) error
	// GC finishes what interrupted processes and failed releases left (engine.Recover)
	// and deletes what no attachment records (a Neutron port whose creation completed
	// after its process died), once seen orphaned twice, grace apart.
	GC(ctx context.Context, owners engine.Owners, grace time.Duration) (engine.GCReport, error)
	Label(ctx context.Context, attID, container, containerName string) error
	// Hand moves an attachment at rest from one holder to another in one state update
	// (see engine/handover.go).
	Hand(ctx context.Context, attID string, from, to engine.Holder, change func(*state.Attachment)) (*state.Attachment, error)
	TakeParked(ctx context.Context, container string) ([]*state.Attachment, error)
	RestoreAccessPort(ctx context.Context, attID string) error
	// DeleteOrphanPorts deletes this VM's ports on a network that no attachment records,
	// for a network that is being deleted.
	DeleteOrphanPorts(ctx context.Context, networkID string) (int, error)

	// What the plugin reads of the engine's state (engine.Records).
	Attachment(ctx context.Context, id string) (*state.Attachment, error)
	AttachmentsOf(ctx context.Context, owner string) ([]*state.Attachment, error)
	AttachmentsOfKind(ctx context.Context, kind string) ([]*state.Attachment, error)
	AttachmentsOn(ctx context.Context, networkID string) ([]*state.Attachment, error)
	// The plugin's own pools and networks, kept in the engine's state: a copy, and an
	// edit made in one state update (nothing written when it fails).
	DockerRecords(ctx context.Context) (engine.DockerRecords, error)
	EditDockerRecords(ctx context.Context, edit func(*engine.DockerRecords) error) error
}

// Neutron is what the plugin asks of Neutron; NeutronAPI implements it.
type Neutron interface {
	FindNetwork(ctx context.Context, nameOrID string) (*neutron.Network, error)
	CreateNetwork(ctx context.Context, o neutron.CreateNetworkOpts) (*neutron.Network, string, error)
	DeleteNetwork(ctx context.Context, id string) error
	// FindSubnet finds a subnet by ID or, when id is empty, by name, and returns it with
	// its network's ID.
	FindSubnet(ctx context.Context, id, name string) (networkID, subnetID string, err error)
	RenameNetwork(ctx context.Context, id, name string) error
	SecurityGroupIDs(ctx context.Context, namesOrIDs []string) ([]string, error)
	QoSPolicyID(ctx context.Context, nameOrID string) (string, error)
	TagNetwork(ctx context.Context, id string, tags []string) error
	// UsedAddresses lists the addresses of the network's ports (--ip-range).
	UsedAddresses(ctx context.Context, networkID string) (map[netip.Addr]bool, error)
}

// Docker is what the plugin asks of the Docker daemon it serves; *docker.Client
// implements it.
type Docker interface {
	Networks(ctx context.Context, driver string) ([]docker.Network, error)
	Network(ctx context.Context, ref string) (docker.Network, error)
	// Inspect tells a container's restart policy, and whether it still exists
	// (docker.ErrNotFound).
	Inspect(ctx context.Context, ref string) (docker.Info, error)
}

// Pools are the agent's pools of ready interfaces (*pool.Pools): a Docker network made
// with -o pool.min=N keeps one for its containers.
type Pools interface {
	AddFor(holder string, s pool.Spec) (string, error)
	RemoveFor(ctx context.Context, holder, key string) error
	Declared(key string) bool
	// Reserve hands a ready interface of a declared pool to to (nil when none).
	Reserve(ctx context.Context, key string, to engine.Holder, change func(*state.Attachment)) (*state.Attachment, error)
}

// Host tells what exists in the VM; VMHost implements it.
type Host interface {
	// LinkExists reports whether a veth of that name is in the VM's network namespace.
	LinkExists(ctx context.Context, name string) (bool, error)
	// PortExists reports whether the VM's bridge has a port of that name.
	PortExists(ctx context.Context, name string) (bool, error)
}

// The real implementations of what the plugin asks for.
var (
	_ Engine     = (*engine.Engine)(nil)
	_ Neutron    = NeutronAPI{}
	_ Docker     = (*docker.Client)(nil)
	_ Host       = VMHost{}
	_ PortLister = (*ovs.Client)(nil)
	_ Pools      = (*pool.Pools)(nil)
)

// Config is a plugin's wiring.
type Config struct {
	Name    string // the plugin's name: Docker's name of the network and IPAM driver
	Engine  Engine // also keeps the plugin's records, in its state
	Neutron Neutron
	// Docker is the daemon the plugin serves. Without it the plugin still answers, but
	// cannot reconcile, learn network names, or label ports with containers.
	Docker  Docker
	Host    Host
	Log     *slog.Logger  // default slog.Default()
	Timeout time.Duration // bounds each call from Docker; default 2 minutes
	// Grace is how long reconciliation leaves alone what Docker does not know yet: an
	// address handed out moments ago whose endpoint Docker is still creating. Default 2
	// minutes.
	Grace time.Duration
	Now   func() time.Time // default time.Now
	// Pools, when set, keep interfaces ready for the networks that ask (-o pool.min);
	// RequestAddress takes one of those, or of the agent's --pool of the same Neutron
	// network and security groups, when there is one.
	Pools Pools
	// Release gives up an attachment Docker no longer wants: into its pool again when
	// the pool's policy reuses interfaces, else deleted (pool.Release). Default
	// Engine.Detach.
	Release func(ctx context.Context, attID string) error
}

// Plugin answers Docker's network driver and IPAM calls.
type Plugin struct {
	cfg   Config
	log   *slog.Logger
	locks keyedLocks
	nets  netCache

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

// New checks the configuration.
func New(cfg Config) (*Plugin, error) {
	if cfg.Name == "" {
		return nil, errors.New("plugin: no name")
	}
	if cfg.Engine == nil || cfg.Neutron == nil || cfg.Host == nil {
		return nil, errors.New("plugin: engine, neutron and host are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Release == nil {
		cfg.Release = cfg.Engine.Detach
	}
	p := &Plugin{cfg: cfg, log: cfg.Log.With("plugin", cfg.Name)}
	p.nets.get = cfg.Neutron.FindNetwork
	p.nets.now = cfg.Now
	p.bgCtx, p.bgCancel = context.WithCancel(context.Background())
	return p, nil
}

// Close stops the plugin's background work (learning names, labelling ports) and waits
// for it.
func (p *Plugin) Close() {
	p.bgCancel()
	p.bg.Wait()
}

// background runs fn outside the call that asked for it; Close cancels and waits.
func (p *Plugin) background(fn func(ctx context.Context)) {
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		fn(p.bgCtx)
	}()
}

// method is one call of the protocol: the request body in, the answer out.
type method func(ctx context.Context, body []byte) (any, error)

// errEmpty answers a call without a body. Docker's plugin client resends a call whose
// connection broke (the plugin died while answering) with the body already consumed:
// acting on an empty request would answer for something that did not happen.
var errEmpty = errors.New("empty request (Docker resent a call the plugin did not finish, without its body): run the command again")

// call decodes the request into Req and calls f.
func call[Req any](f func(context.Context, *Req) (any, error)) method {
	return func(ctx context.Context, body []byte) (any, error) {
		if len(bytes.TrimSpace(body)) == 0 {
			return nil, errEmpty
		}
		var req Req
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, fmt.Errorf("malformed request: %w", err)
		}
		return f(ctx, &req)
	}
}

// empty answers a call that needs nothing done.
func empty(context.Context, []byte) (any, error) { return struct{}{}, nil }

func (p *Plugin) methods() map[string]method {
	return map[string]method{
		pathActivate: func(context.Context, []byte) (any, error) {
			return activateResponse{Implements: []string{networkDriver, ipamDriver}}, nil
		},

		"/NetworkDriver.GetCapabilities": func(context.Context, []byte) (any, error) {
			// Local: a global scope needs swarm's store, and each VM's dockerd keeps its
			// own networks anyway (several may adopt one Neutron network).
			return capabilitiesResponse{Scope: "local", ConnectivityScope: "local"}, nil
		},
		"/NetworkDriver.CreateNetwork":               call(p.createNetwork),
		"/NetworkDriver.DeleteNetwork":               call(p.deleteNetwork),
		"/NetworkDriver.CreateEndpoint":              call(p.createEndpoint),
		"/NetworkDriver.EndpointOperInfo":            call(p.endpointInfo),
		"/NetworkDriver.DeleteEndpoint":              call(p.deleteEndpoint),
		"/NetworkDriver.Join":                        call(p.join),
		"/NetworkDriver.Leave":                       empty, // DeleteEndpoint undoes what Join needed
		"/NetworkDriver.DiscoverNew":                 empty,
		"/NetworkDriver.DiscoverDelete":              empty,
		"/NetworkDriver.ProgramExternalConnectivity": empty,
		"/NetworkDriver.RevokeExternalConnectivity":  empty,

		"/IpamDriver.GetCapabilities": func(context.Context, []byte) (any, error) {
			// The pools and addresses live in the state file: Docker need not replay them.
			return ipamCapabilitiesResponse{}, nil
		},
		"/IpamDriver.GetDefaultAddressSpaces": func(context.Context, []byte) (any, error) {
			return addressSpacesResponse{LocalDefaultAddressSpace: LocalAddressSpace, GlobalDefaultAddressSpace: GlobalAddressSpace}, nil
		},
		"/IpamDriver.RequestPool":    call(p.requestPool),
		"/IpamDriver.ReleasePool":    call(p.releasePool),
		"/IpamDriver.RequestAddress": call(p.requestAddress),
		"/IpamDriver.ReleaseAddress": call(p.releaseAddress),
	}
}

// maxBody bounds a request: Docker's are a few hundred bytes.
const maxBody = 1 << 20

// Handler serves the protocol.
func (p *Plugin) Handler() http.Handler {
	methods := p.methods()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, ok := methods[r.URL.Path]
		if !ok {
			// 404 is how Docker learns that an optional method is not implemented.
			writeJSON(w, http.StatusNotFound, errorResponse{Err: "unknown method " + strings.TrimPrefix(r.URL.Path, "/")})
			return
		}
		if r.Method != http.MethodPost {
			writeJSON(w, http.StatusMethodNotAllowed, errorResponse{Err: "use POST"})
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorResponse{Err: "read request: " + err.Error()})
			return
		}
		// A call runs to its end even when Docker hangs up (dockerd stopping): a release
		// cut off half-way would leave ports for nobody to free.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), p.cfg.Timeout)
		defer cancel()
		name := strings.TrimPrefix(r.URL.Path, "/")
		t0 := time.Now()
		resp, err := m(ctx, body)
		if err != nil {
			msg := oneLine(err.Error())
			p.log.Warn("call failed", "method", name, "ms", time.Since(t0).Milliseconds(), "err", msg, "request", string(bytes.TrimSpace(body)))
			writeJSON(w, http.StatusInternalServerError, errorResponse{Err: msg})
			return
		}
		p.log.Debug("call", "method", name, "ms", time.Since(t0).Milliseconds(), "request", string(bytes.TrimSpace(body)))
		writeJSON(w, http.StatusOK, resp)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"Err":"encode answer"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// oneLine keeps an error on one line: Docker shows it inside its own message.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// keyedLocks serialises work on one key (an endpoint, an address, a network) and lets
// different keys proceed at the same time.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
	// onWait, when set, is told a key another call holds, just before this call waits
	// for it: tests prove that calls queue, or do not, without timing them.
	onWait func(key string)
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// lock takes the keys' locks in the order given and returns what releases them.
// Callers that take several keys name them in one order (address, then endpoint).
func (k *keyedLocks) lock(keys ...string) func() {
	var held []string
	for _, key := range keys {
		k.mu.Lock()
		if k.m == nil {
			k.m = map[string]*keyLock{}
		}
		l := k.m[key]
		if l == nil {
			l = &keyLock{}
			k.m[key] = l
		}
		l.refs++
		queued, onWait := l.refs > 1, k.onWait
		k.mu.Unlock()
		if queued && onWait != nil {
			onWait(key)
		}
		l.mu.Lock()
		held = append(held, key)
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			k.mu.Lock()
			l := k.m[held[i]]
			l.refs--
			if l.refs == 0 {
				delete(k.m, held[i])
			}
			k.mu.Unlock()
			l.mu.Unlock()
		}
	}
}

func epKey(endpointID string) string { return "endpoint:" + endpointID }
func netKey(networkID string) string { return "network:" + networkID }
func poolKey(poolID string) string   { return "pool:" + poolID }
func addrKey(neutronNet, ip string) string {
	return "address:" + neutronNet + "/" + ip
}

// netCache keeps Neutron networks (MTU, subnets) for a while: every address asks for
// its network, and they rarely change.
type netCache struct {
	get func(ctx context.Context, id string) (*neutron.Network, error)
	now func() time.Time

	mu sync.Mutex
	m  map[string]cachedNet
}

type cachedNet struct {
	n  *neutron.Network
	at time.Time
}

const netCacheTTL = 30 * time.Second

func (c *netCache) network(ctx context.Context, id string) (*neutron.Network, error) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < netCacheTTL {
		return e.n, nil
	}
	n, err := c.get(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]cachedNet{}
	}
	c.m[id] = cachedNet{n: n, at: c.now()}
	c.mu.Unlock()
	return n, nil
}

func (c *netCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

func newID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
