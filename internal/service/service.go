// Package service runs the networking of a VM's containers: ovn-docker run, rm, ps, the
// networks, gc, and attaching an interface to a namespace. It is the one implementation
// of api.Backend: the agent holds one for its lifetime and serves it on its socket, and
// the CLI without an agent makes one per command, so both give the same results on the
// same state. Below it the engine owns attachments, VLANs and the state; the service
// wires the engine to the VM's clouds and daemons (Keystone and Neutron, Open vSwitch,
// Docker), made when first needed.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/metrics"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/osauth"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
	"github.com/ovn-docker/ovn-docker/internal/subports"
	"github.com/ovn-docker/ovn-docker/internal/throttle"
)

// Defaults of the local settings.
const (
	DefaultOVSDB    = "unix:/var/run/openvswitch/db.sock"
	DefaultBridge   = "br0"
	DefaultUplink   = "eth0"
	DefaultStateDir = "/var/lib/ovn-docker"
)

// Config is a service's settings: the CLI's flags and variables, or the agent's.
type Config struct {
	// Credentials, as the openstack CLI takes them; with none, the OS_* variables.
	Cred, CredFile, Cloud, AuthURL, Region string

	VIFID string // the VM's Neutron port; "" finds it from Uplink's MAC
	// MetadataURL is network_data.json of the metadata service (DefaultMetadataURL),
	// asked when the uplink's MAC does not name one port.
	MetadataURL string
	Mode        string // trunk (default) or binding-profile
	OVSDB       string
	Bridge      string
	Uplink      string
	StateDir    string
	// ReadyTimeout bounds the wait for OVN to carry a new interface's packets.
	ReadyTimeout time.Duration
	// OVSRunDir is where ovs-vswitchd serves <bridge>.mgmt; "" means OVSDB's directory.
	OVSRunDir string

	Getenv   func(string) string // the process environment (default os.Getenv)
	Log      *slog.Logger
	Redactor *osauth.Redactor
	// Metrics, when set (the agent), is fed by the engine and the OpenStack transport.
	Metrics *metrics.Metrics
	// Fault is the fault-injection hook of test builds (nil otherwise).
	Fault func(step string)
	// Transport, when set, wraps the OpenStack HTTP transport (bench counts calls).
	Transport func(http.RoundTripper) http.RoundTripper
	// DockerPlugin is the name of the Docker plugin the agent serves; with it, run puts
	// containers on the plugin's Docker networks instead of in a sandbox (see Run).
	DockerPlugin string
}

// Service runs a VM's container networking. Its methods may be called concurrently
// (the agent serves many calls at once).
type Service struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	session *osauth.Session
	nc      *neutron.Client
	sw      *ovs.Client
	dc      *docker.Client
	eng     *engine.Engine
	vifPort *neutron.Port   // the VM's port, once found
	vifHow  string          // how it was found, for doctor
	trunkID string          // its trunk, as last seen by this VM's processes
	runs    map[string]bool // runs in progress in this process (the agent runs many)
	pools   *pool.Pools     // the agent's pools, when it runs
	health  health
	netMu   sync.Mutex // one run at a time makes a Docker network
	lc      lifecycle  // what the agent follows of Docker's containers (lifecycle.go)

	// later is work off the caller's critical path (a port's tags); Close waits for it.
	laterCtx    context.Context
	laterCancel context.CancelFunc
	laterWG     sync.WaitGroup
	lastRun     time.Time // when a run last started (see whenQuiet)
}

var _ api.Backend = (*Service)(nil)

// New makes a service; nothing is contacted until a method needs it.
func New(cfg Config) *Service {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Redactor == nil {
		cfg.Redactor = &osauth.Redactor{}
	}
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.OVSDB == "" {
		cfg.OVSDB = DefaultOVSDB
	}
	if cfg.Uplink == "" {
		cfg.Uplink = DefaultUplink
	}
	s := &Service{cfg: cfg, log: cfg.Log}
	s.laterCtx, s.laterCancel = context.WithCancel(context.Background())
	return s
}

// later runs fn in the background, off the caller's critical path; Close waits for it.
func (s *Service) later(fn func(ctx context.Context)) {
	s.laterWG.Add(1)
	go func() {
		defer s.laterWG.Done()
		fn(s.laterCtx)
	}()
}

// quietAfterRun is how long whenQuiet's work waits after a run started: a Neutron call
// on the VM's and the cloud's CPUs slows the very container start it comes from.
// maxQuietWait bounds the wait while runs keep coming.
const (
	quietAfterRun = time.Second
	maxQuietWait  = 10 * time.Second
)

// ran notes that a run or an attach started (see whenQuiet).
func (s *Service) ran() {
	s.mu.Lock()
	s.lastRun = time.Now()
	s.mu.Unlock()
}

// whenQuiet is later for work that may wait (a port's tags, for operators): it runs
// once no run has started for quietAfterRun, or after maxQuietWait at most.
func (s *Service) whenQuiet(fn func(ctx context.Context)) {
	s.later(func(ctx context.Context) {
		deadline := time.Now().Add(maxQuietWait)
		for {
			s.mu.Lock()
			wait := time.Until(s.lastRun.Add(quietAfterRun))
			s.mu.Unlock()
			if left := time.Until(deadline); wait > left {
				wait = left
			}
			if wait <= 0 {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		fn(ctx)
	})
}

// Config is the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Close waits for the work it left in the background, then releases the clients it made.
func (s *Service) Close() {
	s.laterWG.Wait()
	s.laterCancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sw != nil {
		s.sw.Close()
		s.sw = nil
	}
	if s.dc != nil {
		s.dc.Close()
		s.dc = nil
	}
}

// step marks a named point of an operation for the fault-injection switch of test builds.
func (s *Service) step(name string) {
	if s.cfg.Fault != nil {
		s.cfg.Fault(name)
	}
}

// Session authenticates once, the first time OpenStack is needed.
func (s *Service) Session(ctx context.Context) (*osauth.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionLocked(ctx)
}

func (s *Service) sessionLocked(ctx context.Context) (*osauth.Session, error) {
	if s.session != nil {
		return s.session, nil
	}
	token := s.cfg.Cred
	if s.cfg.CredFile != "" {
		if token != "" {
			return nil, api.Invalid(errors.New("give --cred or --cred-file, not both"))
		}
		t, err := readCredFile(s.cfg.CredFile, os.Geteuid())
		if err != nil {
			return nil, api.Invalid(err)
		}
		token = t
	}
	sess, err := osauth.Authenticate(ctx, osauth.Options{
		Token: token, Cloud: s.cfg.Cloud, AuthURL: s.cfg.AuthURL, Region: s.cfg.Region,
		Getenv: s.cfg.Getenv, Redactor: s.cfg.Redactor, Transport: s.wrapTransport,
		CacheDir: filepath.Join(s.cfg.StateDir, "tokens"), Timeout: s.apiTimeout(),
	})
	if err != nil {
		return nil, err
	}
	s.session = sess
	return sess, nil
}

// apiTimeout bounds each OpenStack request attempt: OVN_DOCKER_API_TIMEOUT (a Go
// duration), else osauth's default.
func (s *Service) apiTimeout() time.Duration {
	d, err := time.ParseDuration(s.cfg.Getenv("OVN_DOCKER_API_TIMEOUT"))
	if err != nil || d <= 0 {
		return 0
	}
	return d
}

// wrapTransport puts the VM-wide limit on OpenStack requests in flight, and the retries
// of transient failures, around each request (and the configured wrapper inside them).
func (s *Service) wrapTransport(base http.RoundTripper) http.RoundTripper {
	rt := base
	if s.cfg.Transport != nil {
		rt = s.cfg.Transport(rt)
	}
	if s.cfg.Metrics != nil {
		rt = s.cfg.Metrics.Transport(rt)
	}
	n := 4
	if v, err := strconv.Atoi(s.cfg.Getenv("OVN_DOCKER_API_CONCURRENCY")); err == nil && v > 0 {
		n = v
	}
	tr := &neutron.Transport{Next: rt}
	if slots, err := throttle.NewSlots(filepath.Join(s.cfg.StateDir, "api-slots"), n); err != nil {
		s.log.Warn("no VM-wide limit on OpenStack requests", "err", err)
	} else {
		tr.Slots = slots // never a nil *throttle.Slots in the interface
	}
	return tr
}

// Neutron is the Neutron client, authenticated.
func (s *Service) Neutron(ctx context.Context) (*neutron.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.neutronLocked(ctx)
}

func (s *Service) neutronLocked(ctx context.Context) (*neutron.Client, error) {
	if s.nc != nil {
		return s.nc, nil
	}
	sess, err := s.sessionLocked(ctx)
	if err != nil {
		return nil, err
	}
	nc, err := neutron.New(sess.Provider, sess.Endpoint)
	if err != nil {
		return nil, err
	}
	s.nc = nc
	return nc, nil
}

// OVS is the client of the VM's Open vSwitch.
func (s *Service) OVS(ctx context.Context) (*ovs.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ovsLocked(ctx)
}

func (s *Service) ovsLocked(ctx context.Context) (*ovs.Client, error) {
	if s.sw != nil {
		return s.sw, nil
	}
	sw, err := ovs.Dial(ctx, s.cfg.OVSDB)
	if err != nil {
		return nil, api.Unavailable(fmt.Errorf("the VM's Open vSwitch at %s (--ovsdb / OVN_DOCKER_OVSDB): %w", s.cfg.OVSDB, err))
	}
	s.sw = sw
	return sw, nil
}

// Docker is the client of the VM's dockerd; a failed connection is tried again at the
// next call (dockerd may start after the agent, or restart under it).
func (s *Service) Docker(ctx context.Context) (*docker.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dc != nil {
		return s.dc, nil
	}
	dc, err := docker.New(ctx, "")
	if err != nil {
		return nil, api.Unavailable(err)
	}
	s.dc = dc
	return dc, nil
}

// Store is the VM's state.
func (s *Service) Store() (*state.Store, error) {
	return state.Open(s.cfg.StateDir)
}

// records is what the service reads of the VM's state: the engine's Records, which need
// no engine (no credentials).
func (s *Service) records() (*engine.Records, error) {
	st, err := s.Store()
	if err != nil {
		return nil, err
	}
	return engine.NewRecords(st), nil
}

// VMPort is the VM's own Neutron port, once found (nil before).
func (s *Service) VMPort() *neutron.Port {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vifPort
}

// saveVMPort keeps the VM's port, and its trunk when known, for the VM's next processes.
func (s *Service) saveVMPort(trunkID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saveVMPortLocked(trunkID)
}

func (s *Service) saveVMPortLocked(trunkID string) {
	if s.vifPort == nil || s.session == nil {
		return
	}
	if trunkID != "" {
		s.trunkID = trunkID
	}
	saveVMPort(s.cfg.StateDir, vmPortFacts{VIFID: s.vifPort.ID, CredProject: s.session.ProjectID,
		Project: s.vifPort.ProjectID, MAC: s.vifPort.MAC.String(), TrunkID: s.trunkID, Checked: time.Now().UTC()})
}

// VIF returns the VM's own Neutron port's ID (see vifLocked).
func (s *Service) VIF(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng != nil {
		return s.eng.Config().VIFID, nil
	}
	return s.vifLocked(ctx)
}

// vifLocked returns the VM's own Neutron port: VIFID, or the port whose MAC is the
// uplink's. It checks that the port exists and is visible to the credentials.
func (s *Service) vifLocked(ctx context.Context) (string, error) {
	nc, err := s.neutronLocked(ctx)
	if err != nil {
		return "", err
	}
	cache := s.cfg.Mode == "" || s.cfg.Mode == string(neutron.ModeTrunk)
	if cache {
		var mac net.HardwareAddr
		if s.cfg.VIFID == "" {
			mac, _ = uplinkMAC(s.cfg.Uplink)
		}
		if f, ok := cachedVMPort(s.cfg.StateDir, s.session.ProjectID, s.cfg.VIFID, mac, time.Now()); ok {
			s.vifPort, s.trunkID = f.port(), f.TrunkID
			return f.VIFID, nil
		}
		defer func() {
			if s.vifPort != nil {
				s.saveVMPortLocked("")
			}
		}()
	}
	if s.cfg.VIFID != "" {
		p, err := nc.GetPort(ctx, s.cfg.VIFID)
		if errors.Is(err, neutron.ErrNotFound) {
			// Neutron answers a port of another project as it answers a missing one.
			return "", api.NotFound(fmt.Errorf("vif-id %s: the VM's port is not visible to this project (no such Neutron port, "+
				"or another project's): use the credentials of the VM's own project", s.cfg.VIFID))
		}
		if err != nil {
			return "", fmt.Errorf("vif-id %s: %w", s.cfg.VIFID, err)
		}
		if mac, err := uplinkMAC(s.cfg.Uplink); err == nil && !sameMAC(mac, p.MAC) {
			s.log.Warn("the vif-id's MAC is not the uplink's: is this the port of this VM?",
				"vif-id", p.ID, "port_mac", p.MAC.String(), "uplink", s.cfg.Uplink, "uplink_mac", mac.String())
		}
		s.vifPort = p
		return p.ID, nil
	}
	mac, err := uplinkMAC(s.cfg.Uplink)
	if err != nil {
		return "", api.Invalid(fmt.Errorf("no --vif-id given, and the VM's uplink cannot tell it: %w (set --uplink or give --vif-id)", err))
	}
	p, err := nc.PortByMAC(ctx, mac)
	if errors.Is(err, neutron.ErrNotFound) || errors.Is(err, neutron.ErrAmbiguous) {
		// Nova's word, through the metadata service: the port of the NIC with that MAC.
		url := s.cfg.MetadataURL
		if url == "" {
			url = DefaultMetadataURL
		}
		if vif, merr := vifFromMetadata(ctx, url, mac); merr == nil {
			if mp, gerr := nc.GetPort(ctx, vif); gerr == nil {
				s.log.Info("found the VM's port through the metadata service", "uplink", s.cfg.Uplink, "vif-id", mp.ID)
				s.vifPort, s.vifHow = mp, "by the metadata service's network_data.json"
				return mp.ID, nil
			}
		} else {
			s.log.Debug("the metadata service does not tell the VM's port", "err", merr)
		}
	}
	if errors.Is(err, neutron.ErrNotFound) {
		return "", api.NotFound(fmt.Errorf("no --vif-id given, and no port visible to this project has the uplink %s's MAC %s: "+
			"the VM's port is not visible to this project (is the VM another project's?): use the credentials "+
			"of the VM's own project, or give --vif-id", s.cfg.Uplink, mac))
	}
	if err != nil {
		return "", fmt.Errorf("no --vif-id given, and the uplink %s's MAC %s does not identify the VM's port: %w", s.cfg.Uplink, mac, err)
	}
	s.log.Info("found the VM's port from the uplink's MAC", "uplink", s.cfg.Uplink, "vif-id", p.ID)
	s.vifPort, s.vifHow = p, "by the uplink's MAC"
	return p.ID, nil
}

func uplinkMAC(name string) (net.HardwareAddr, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("uplink %s: %w", name, err)
	}
	mac := l.Attrs().HardwareAddr
	if len(mac) != 6 {
		return nil, fmt.Errorf("uplink %s has no Ethernet address", name)
	}
	return mac, nil
}

func sameMAC(a, b net.HardwareAddr) bool { return strings.EqualFold(a.String(), b.String()) }

// Engine is the VM's engine, wired once: the VM's port, Neutron, Open vSwitch, the state
// and the trunk change queue the VM's processes share.
func (s *Service) Engine(ctx context.Context) (*engine.Engine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng != nil {
		return s.eng, nil
	}
	mode, err := neutron.ParseMode(s.cfg.Mode)
	if err != nil {
		return nil, api.Invalid(err)
	}
	vif, err := s.vifLocked(ctx)
	if err != nil {
		return nil, err
	}
	nc, _ := s.neutronLocked(ctx)
	sw, err := s.ovsLocked(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.Store()
	if err != nil {
		return nil, err
	}
	var project string
	if s.vifPort != nil {
		project = s.vifPort.ProjectID
	}
	// The VM's processes send their trunk changes together (see package subports).
	q, err := subports.New(filepath.Join(s.cfg.StateDir, "subports"), nc)
	if err != nil {
		return nil, err
	}
	if s.session != nil {
		q.Project = s.session.ProjectID
	}
	eng, err := engine.New(engine.Config{
		VIFID: vif, VIFProject: project, Bridge: s.cfg.Bridge, Mode: mode, Store: st, Neutron: nc, Switch: sw,
		Subports: q, TrunkID: s.trunkID, OnTrunk: s.saveVMPort, Guard: s.guardOf(sw),
		Log: s.log, ReadyTimeout: s.cfg.ReadyTimeout,
		Observe: func(phase string, d time.Duration) {
			s.log.Debug("attach phase", "phase", phase, "ms", d.Milliseconds())
			if s.cfg.Metrics != nil {
				s.cfg.Metrics.Observe(phase, d)
			}
		},
		Fault: s.cfg.Fault,
	})
	if err != nil {
		return nil, err
	}
	s.eng = eng
	return eng, nil
}
