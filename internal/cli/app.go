// Package cli is ovn-docker's command line: the spec's commands (create/list/delete
// network, run, rm, ps) and the daemon and maintenance commands, all on one engine.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/metrics"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/osauth"
	"github.com/ovn-docker/ovn-docker/internal/ovs"
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

// settings are the global flags, filled from the command line and the environment.
type settings struct {
	cred         string
	credFile     string
	cloud        string
	authURL      string
	region       string
	vifID        string
	networks     []string
	secGroups    []string
	mode         string
	ovsdb        string
	bridge       string
	uplink       string
	stateDir     string
	logLevel     string
	timeout      time.Duration
	readyTimeout time.Duration
}

// app is what the commands share: settings, output streams and lazily made clients.
type app struct {
	s        settings
	stdout   io.Writer
	stderr   io.Writer
	getenv   func(string) string
	log      *slog.Logger
	redactor *osauth.Redactor

	// metrics, when set (the daemon), is fed by the engine and the OpenStack transport.
	metrics *metrics.Metrics
	// fault is the fault-injection hook of test builds (nil otherwise).
	fault func(step string)
	// transport, when set before the first OpenStack call, wraps its HTTP transport.
	transport func(http.RoundTripper) http.RoundTripper

	session *osauth.Session
	nc      *neutron.Client
	sw      *ovs.Client
	dc      *docker.Client
	vifPort *neutron.Port // the VM's port, once vif found it
	trunkID string        // its trunk, as last seen by this VM's processes
}

// saveVMPort keeps the VM's port, and its trunk when known, for the VM's next processes.
func (a *app) saveVMPort(trunkID string) {
	if a.vifPort == nil || a.session == nil {
		return
	}
	if trunkID != "" {
		a.trunkID = trunkID
	}
	saveVMPort(a.s.stateDir, vmPortFacts{VIFID: a.vifPort.ID, CredProject: a.session.ProjectID,
		Project: a.vifPort.ProjectID, MAC: a.vifPort.MAC.String(), TrunkID: a.trunkID, Checked: time.Now().UTC()})
}

// step marks a named point of a command for the fault-injection switch of test builds.
func (a *app) step(name string) {
	if a.fault != nil {
		a.fault(name)
	}
}

func (a *app) close() {
	if a.sw != nil {
		a.sw.Close()
	}
	if a.dc != nil {
		a.dc.Close()
	}
}

// openstack authenticates once per process.
func (a *app) openstack(ctx context.Context) (*osauth.Session, error) {
	if a.session != nil {
		return a.session, nil
	}
	token := a.s.cred
	if a.s.credFile != "" {
		if token != "" {
			return nil, errors.New("give --cred or --cred-file, not both")
		}
		t, err := readCredFile(a.s.credFile, os.Geteuid())
		if err != nil {
			return nil, err
		}
		token = t
	}
	s, err := osauth.Authenticate(ctx, osauth.Options{
		Token: token, Cloud: a.s.cloud, AuthURL: a.s.authURL, Region: a.s.region,
		Getenv: a.getenv, Redactor: a.redactor, Transport: a.wrapTransport,
		CacheDir: filepath.Join(a.s.stateDir, "tokens"), Timeout: a.apiTimeout(),
	})
	if err != nil {
		return nil, err
	}
	a.session = s
	return s, nil
}

// apiTimeout bounds each OpenStack request attempt: OVN_DOCKER_API_TIMEOUT (a Go
// duration), else osauth's default.
func (a *app) apiTimeout() time.Duration {
	d, err := time.ParseDuration(a.getenv("OVN_DOCKER_API_TIMEOUT"))
	if err != nil || d <= 0 {
		return 0
	}
	return d
}

// wrapTransport puts the VM-wide limit on OpenStack requests in flight, and the retries
// of transient failures, around each request (and a.transport's counting inside them).
func (a *app) wrapTransport(base http.RoundTripper) http.RoundTripper {
	rt := base
	if a.transport != nil {
		rt = a.transport(rt)
	}
	if a.metrics != nil {
		rt = a.metrics.Transport(rt)
	}
	n := 4
	if v, err := strconv.Atoi(a.getenv("OVN_DOCKER_API_CONCURRENCY")); err == nil && v > 0 {
		n = v
	}
	tr := &neutron.Transport{Next: rt}
	if slots, err := throttle.NewSlots(filepath.Join(a.s.stateDir, "api-slots"), n); err != nil {
		a.log.Warn("no VM-wide limit on OpenStack requests", "err", err)
	} else {
		tr.Slots = slots // never a nil *throttle.Slots in the interface
	}
	return tr
}

func (a *app) neutron(ctx context.Context) (*neutron.Client, error) {
	if a.nc != nil {
		return a.nc, nil
	}
	s, err := a.openstack(ctx)
	if err != nil {
		return nil, err
	}
	nc, err := neutron.New(s.Provider, s.Endpoint)
	if err != nil {
		return nil, err
	}
	a.nc = nc
	return nc, nil
}

func (a *app) ovs(ctx context.Context) (*ovs.Client, error) {
	if a.sw != nil {
		return a.sw, nil
	}
	sw, err := ovs.Dial(ctx, a.s.ovsdb)
	if err != nil {
		return nil, fmt.Errorf("the VM's Open vSwitch at %s (--ovsdb / OVN_DOCKER_OVSDB): %w", a.s.ovsdb, err)
	}
	a.sw = sw
	return sw, nil
}

func (a *app) docker(ctx context.Context) (*docker.Client, error) {
	if a.dc != nil {
		return a.dc, nil
	}
	dc, err := docker.New(ctx, "")
	if err != nil {
		return nil, err
	}
	a.dc = dc
	return dc, nil
}

func (a *app) store() (*state.Store, error) {
	return state.Open(a.s.stateDir)
}

// vif returns the VM's own Neutron port: --vif-id, or the port whose MAC is the
// uplink's. It checks that the port exists and is visible to the credentials.
func (a *app) vif(ctx context.Context) (string, error) {
	nc, err := a.neutron(ctx)
	if err != nil {
		return "", err
	}
	cache := a.s.mode == "" || a.s.mode == string(neutron.ModeTrunk)
	if cache {
		var mac net.HardwareAddr
		if a.s.vifID == "" {
			mac, _ = uplinkMAC(a.s.uplink)
		}
		if f, ok := cachedVMPort(a.s.stateDir, a.session.ProjectID, a.s.vifID, mac, time.Now()); ok {
			a.vifPort, a.trunkID = f.port(), f.TrunkID
			return f.VIFID, nil
		}
		defer func() {
			if a.vifPort != nil {
				a.saveVMPort("")
			}
		}()
	}
	if a.s.vifID != "" {
		p, err := nc.GetPort(ctx, a.s.vifID)
		if errors.Is(err, neutron.ErrNotFound) {
			// Neutron answers a port of another project as it answers a missing one.
			return "", fmt.Errorf("vif-id %s: the VM's port is not visible to this project (no such Neutron port, "+
				"or another project's): use the credentials of the VM's own project", a.s.vifID)
		}
		if err != nil {
			return "", fmt.Errorf("vif-id %s: %w", a.s.vifID, err)
		}
		if mac, err := uplinkMAC(a.s.uplink); err == nil && !sameMAC(mac, p.MAC) {
			a.log.Warn("the vif-id's MAC is not the uplink's: is this the port of this VM?",
				"vif-id", p.ID, "port_mac", p.MAC.String(), "uplink", a.s.uplink, "uplink_mac", mac.String())
		}
		a.vifPort = p
		return p.ID, nil
	}
	mac, err := uplinkMAC(a.s.uplink)
	if err != nil {
		return "", fmt.Errorf("no --vif-id given, and the VM's uplink cannot tell it: %w (set --uplink or give --vif-id)", err)
	}
	p, err := nc.PortByMAC(ctx, mac)
	if errors.Is(err, neutron.ErrNotFound) {
		return "", fmt.Errorf("no --vif-id given, and no port visible to this project has the uplink %s's MAC %s: "+
			"the VM's port is not visible to this project (is the VM another project's?): use the credentials "+
			"of the VM's own project, or give --vif-id", a.s.uplink, mac)
	}
	if err != nil {
		return "", fmt.Errorf("no --vif-id given, and the uplink %s's MAC %s does not identify the VM's port: %w", a.s.uplink, mac, err)
	}
	a.log.Info("found the VM's port from the uplink's MAC", "uplink", a.s.uplink, "vif-id", p.ID)
	a.vifPort = p
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

// engine wires an engine for the VM.
func (a *app) engine(ctx context.Context) (*engine.Engine, error) {
	mode, err := neutron.ParseMode(a.s.mode)
	if err != nil {
		return nil, err
	}
	vif, err := a.vif(ctx)
	if err != nil {
		return nil, err
	}
	nc, _ := a.neutron(ctx)
	sw, err := a.ovs(ctx)
	if err != nil {
		return nil, err
	}
	st, err := a.store()
	if err != nil {
		return nil, err
	}
	var project string
	if a.vifPort != nil {
		project = a.vifPort.ProjectID
	}
	// The VM's processes send their trunk changes together (see package subports).
	q, err := subports.New(filepath.Join(a.s.stateDir, "subports"), nc)
	if err != nil {
		return nil, err
	}
	if a.session != nil {
		q.Project = a.session.ProjectID
	}
	return engine.New(engine.Config{
		VIFID: vif, VIFProject: project, Bridge: a.s.bridge, Mode: mode, Store: st, Neutron: nc, Switch: sw,
		Subports: q, TrunkID: a.trunkID, OnTrunk: a.saveVMPort,
		Log: a.log, ReadyTimeout: a.s.readyTimeout,
		Observe: func(phase string, d time.Duration) {
			a.log.Debug("attach phase", "phase", phase, "ms", d.Milliseconds())
			if a.metrics != nil {
				a.metrics.Observe(phase, d)
			}
		},
		Fault: a.fault,
	})
}

// newLogger logs to w at the level asked, through the redactor.
func newLogger(w io.Writer, level string, red *osauth.Redactor) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: l, ReplaceAttr: func(_ []string, at slog.Attr) slog.Attr {
		switch at.Value.Kind() {
		case slog.KindString:
			at.Value = slog.StringValue(red.String(at.Value.String()))
		case slog.KindAny:
			if err, ok := at.Value.Any().(error); ok {
				at.Value = slog.StringValue(red.String(err.Error()))
			}
		}
		return at
	}})
	return slog.New(&redactingHandler{Handler: h, red: red}), nil
}

// redactingHandler also redacts the message itself.
type redactingHandler struct {
	slog.Handler
	red *osauth.Redactor
}

func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	r2 := slog.NewRecord(r.Time, r.Level, h.red.String(r.Message), r.PC)
	r.Attrs(func(at slog.Attr) bool { r2.AddAttrs(at); return true })
	return h.Handler.Handle(ctx, r2)
}

func (h *redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &redactingHandler{Handler: h.Handler.WithAttrs(as), red: h.red}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{Handler: h.Handler.WithGroup(name), red: h.red}
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
