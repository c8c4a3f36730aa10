package service

// doctor: everything a VM needs before its first container, one line each, and for
// each failure the command that fixes it. A missing bridge, a stopped dockerd or an
// unreachable Neutron is found here, or by run's own preflight (the same words), before
// any Neutron port is made and rolled back.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/common/extensions"
	"github.com/vishvananda/netlink"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/osauth"
)

// MaxClockSkew is how far the VM's clock may be from Keystone's before doctor fails:
// tokens carry their expiry in Keystone's time.
const MaxClockSkew = 30 * time.Second

// DoctorOptions say where the agent's plugin socket is (the daemon's flags).
type DoctorOptions struct {
	PluginDir, PluginName string
}

// doctor collects the checks; each one is a line.
type doctor struct {
	s   *Service
	out []api.Check
}

func (d *doctor) ok(name, detail string) {
	d.out = append(d.out, api.Check{Name: name, OK: true, Detail: detail})
}

func (d *doctor) fail(name string, err error, fix string) {
	d.out = append(d.out, api.Check{Name: name, Detail: d.s.cfg.Redactor.String(err.Error()), Fix: fix})
}

// Doctor runs every check and returns them in order; a check that needs another (the
// trunk needs Neutron) is left out when that one failed, its line saying so.
func (s *Service) Doctor(ctx context.Context, o DoctorOptions) []api.Check {
	d := &doctor{s: s}
	d.local(ctx)
	if !failed(d.out) {
		d.raGuard(ctx)
	}
	d.openstack(ctx)
	d.docker(ctx)
	d.agent(ctx, o)
	return d.out
}

// Preflight is what run, the CNI plugin's ADD and the agent's start check before
// anything is made: the VM's Open vSwitch, its bridge and the uplink on it. Its error
// is doctor's line, with the fix.
func (s *Service) Preflight(ctx context.Context) error {
	d := &doctor{s: s}
	d.local(ctx)
	for _, c := range d.out {
		if !c.OK {
			return api.Invalid(fmt.Errorf("%s: %s; fix: %s", c.Name, c.Detail, c.Fix))
		}
	}
	return nil
}

// local checks the VM's own parts: Open vSwitch, the bridge, the uplink on it and its MTU.
func (d *doctor) local(ctx context.Context) {
	s := d.s
	sw, err := s.OVS(ctx)
	if err != nil {
		d.fail("ovsdb", err, "start Open vSwitch (systemctl start openvswitch-switch), or give its database with --ovsdb")
		return
	}
	d.ok("ovsdb", s.cfg.OVSDB)
	ports, err := sw.Ports(ctx, s.cfg.Bridge)
	if err != nil {
		d.fail("bridge", err, fmt.Sprintf("%s add-br %s -- add-port %s %s, then move %s's addresses and routes onto %s (from the VM's console: "+
			"it is cut off meanwhile); or give the VM's bridge with --bridge", s.vsctl(), s.cfg.Bridge, s.cfg.Bridge, s.cfg.Uplink, s.cfg.Uplink, s.cfg.Bridge))
		return
	}
	d.ok("bridge", fmt.Sprintf("%s, %d port(s)", s.cfg.Bridge, len(ports)))
	onBridge := false
	for _, p := range ports {
		onBridge = onBridge || p.Name == s.cfg.Uplink
	}
	if !onBridge {
		fix := fmt.Sprintf("%s add-port %s %s (or give the VM's NIC with --uplink)", s.vsctl(), s.cfg.Bridge, s.cfg.Uplink)
		if hasGlobalAddress(s.cfg.Uplink) {
			// Added as it is, the uplink would take the VM's address with it.
			fix = fmt.Sprintf("move %s's addresses and routes onto %s first (from the VM's console), then %s add-port %s %s",
				s.cfg.Uplink, s.cfg.Bridge, s.vsctl(), s.cfg.Bridge, s.cfg.Uplink)
		}
		d.fail("uplink", fmt.Errorf("%s is not a port of %s: containers' tagged frames cannot leave the VM", s.cfg.Uplink, s.cfg.Bridge), fix)
		return
	}
	up, err := netlink.LinkByName(s.cfg.Uplink)
	if err != nil {
		d.fail("uplink", fmt.Errorf("%s: %w", s.cfg.Uplink, err), "give the VM's NIC with --uplink")
		return
	}
	if up.Attrs().OperState != netlink.OperUp && up.Attrs().Flags&net.FlagUp == 0 {
		d.fail("uplink", fmt.Errorf("%s is down", s.cfg.Uplink), fmt.Sprintf("ip link set %s up", s.cfg.Uplink))
		return
	}
	d.ok("uplink", fmt.Sprintf("%s on %s, MTU %d", s.cfg.Uplink, s.cfg.Bridge, up.Attrs().MTU))
}

// openstack checks Keystone (credentials, their project, the clock), Neutron, the trunk
// extension, the VM's port and its network's MTU against the uplink's.
func (d *doctor) openstack(ctx context.Context) {
	s := d.s
	sess, err := s.Session(ctx)
	if err != nil {
		fix := "check the credentials: os-cloud in /etc/ovn-docker/ovn-docker.conf (clouds.yaml), or OS_* variables"
		if errors.Is(err, osauth.ErrNoCredentials) {
			fix = "give credentials: os-cloud = NAME in /etc/ovn-docker/ovn-docker.conf with the cloud in /etc/openstack/clouds.yaml (mode 0600), or OS_* variables"
		} else if isUnreachable(err) {
			fix = "check the Keystone URL (auth_url, OS_AUTH_URL) and that this VM reaches it: curl -sS URL"
		}
		d.fail("keystone", err, fix)
		return
	}
	if sess.ProjectID == "" {
		d.fail("keystone", fmt.Errorf("the credentials are not scoped to a project"),
			"scope them to the VM's project: project_name/project_id in clouds.yaml, or OS_PROJECT_NAME")
		return
	}
	d.ok("keystone", fmt.Sprintf("%s, project %s (%s)", sess.Provider.IdentityEndpoint, sess.ProjectID, sess.Method))
	d.clock(ctx, sess)

	nc, err := s.Neutron(ctx)
	if err != nil {
		d.fail("neutron", err, "check that the catalog's network endpoint is reachable from this VM (OS_INTERFACE=public|internal, OS_REGION_NAME)")
		return
	}
	if _, err := nc.ListNetworks(ctx); err != nil {
		d.fail("neutron", err, "check that the catalog's network endpoint is reachable from this VM (OS_INTERFACE=public|internal, OS_REGION_NAME)")
		return
	}
	d.ok("neutron", nc.ServiceClient().Endpoint)
	mode, _ := neutron.ParseMode(s.cfg.Mode)
	if mode == neutron.ModeTrunk {
		_, err := extensions.Get(ctx, nc.ServiceClient(), "trunk").Extract()
		switch {
		case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
			d.fail("trunk extension", errors.New("Neutron has no trunk extension"),
				"ask the cloud's operator for the trunk service plugin (service_plugins = trunk), or use --mode binding-profile with admin credentials")
		case err != nil:
			d.fail("trunk extension", err, "retry; Neutron did not say whether it has trunks")
		default:
			d.ok("trunk extension", "trunk")
		}
	}

	vif, err := s.VIF(ctx)
	if err != nil {
		d.fail("vm port", err, "give the VM's port with --vif-id (openstack port list --server VM_NAME), or check --uplink; "+
			"without either, the uplink's MAC and then the metadata service's network_data.json are asked")
		return
	}
	s.mu.Lock()
	how := s.vifHow
	s.mu.Unlock()
	switch {
	case s.cfg.VIFID != "":
		how = "by --vif-id"
	case how == "":
		how = "from this VM's record of it" // found by an earlier command
	}
	p, err := nc.GetPort(ctx, vif)
	if err != nil {
		d.fail("vm port", err, "give the VM's port with --vif-id (openstack port list --server VM_NAME)")
		return
	}
	d.ok("vm port", fmt.Sprintf("%s (found %s), network %s", vif, how, p.NetworkID))
	if mode != neutron.ModeTrunk {
		d.ok("trunk", "not used: "+string(mode)+" mode")
	} else if t, err := nc.TrunkOf(ctx, vif); err != nil {
		d.fail("trunk", err, "retry; Neutron did not answer for the VM's trunk")
	} else if t == nil {
		d.ok("trunk", "none yet: the first container makes the VM's port a trunk parent")
	} else {
		d.ok("trunk", fmt.Sprintf("%s, %d subport(s)", t.ID, len(t.Subports)))
	}
	if n, err := nc.FindNetwork(ctx, p.NetworkID); err == nil && n.MTU > 0 {
		if up, err := netlink.LinkByName(s.cfg.Uplink); err == nil {
			if m := up.Attrs().MTU; m < n.MTU {
				d.fail("mtu", fmt.Errorf("%s has MTU %d, below its Neutron network's %d: containers' large packets would be lost", s.cfg.Uplink, m, n.MTU),
					fmt.Sprintf("ip link set %s mtu %d (and %s)", s.cfg.Uplink, n.MTU, s.cfg.Bridge))
			} else {
				d.ok("mtu", fmt.Sprintf("%s %d, network %d", s.cfg.Uplink, m, n.MTU))
			}
		}
	}
}

// clock compares the VM's clock with Keystone's Date header.
func (d *doctor) clock(ctx context.Context, sess *osauth.Session) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sess.Provider.IdentityEndpoint, nil)
	if err != nil {
		return
	}
	resp, err := sess.Provider.HTTPClient.Do(req)
	if err != nil {
		d.fail("clock", err, "check that this VM reaches Keystone")
		return
	}
	resp.Body.Close()
	theirs, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		d.ok("clock", "Keystone sends no Date: not compared")
		return
	}
	skew := time.Since(theirs).Round(time.Second)
	if skew > MaxClockSkew || -skew > MaxClockSkew {
		d.fail("clock", fmt.Errorf("this VM's clock is %s from Keystone's: tokens may seem expired or not yet valid", skew),
			"synchronise the clock: timedatectl set-ntp true (or chronyc makestep)")
		return
	}
	d.ok("clock", fmt.Sprintf("within %s of Keystone's", MaxClockSkew))
}

// docker checks dockerd, where the VM has one.
func (d *doctor) docker(ctx context.Context) {
	dc, err := d.s.Docker(ctx)
	if err == nil {
		_, err = dc.List(ctx, LabelVM)
	}
	if err != nil {
		d.fail("docker", err, "start dockerd (systemctl start docker), or say where it is with DOCKER_HOST")
		return
	}
	d.ok("docker", "answers")
}

// agent checks the agent's socket and the plugin it serves to dockerd.
func (d *doctor) agent(ctx context.Context, o DoctorOptions) {
	c, err := api.Dial(ctx, d.s.cfg.StateDir)
	if err != nil {
		d.fail("agent", err, "start the agent: systemctl enable --now ovn-docker (or ovn-docker daemon)")
		return
	}
	if _, err := c.Status(ctx); err != nil {
		d.fail("agent", fmt.Errorf("%s: %w", c.Path(), err), "restart it: systemctl restart ovn-docker")
		return
	}
	d.ok("agent", c.Path())
	if o.PluginDir == "" || o.PluginName == "" {
		return
	}
	sock := filepath.Join(o.PluginDir, o.PluginName+".sock")
	impl, err := activatePlugin(ctx, sock)
	if err != nil {
		d.fail("plugin", err, fmt.Sprintf("the agent serves it: check its --plugin-dir and --plugin-name (dockerd looks in %s)", o.PluginDir))
		return
	}
	if !strings.Contains(impl, "NetworkDriver") || !strings.Contains(impl, "IpamDriver") {
		d.fail("plugin", fmt.Errorf("%s implements %s, not NetworkDriver and IpamDriver", sock, impl), "is another plugin using this name? give the agent --plugin-name")
		return
	}
	d.ok("plugin", fmt.Sprintf("%s: docker network create -d %s --ipam-driver %s", sock, o.PluginName, o.PluginName))
}

// activatePlugin asks the plugin socket what dockerd would: POST /Plugin.Activate.
func activatePlugin(ctx context.Context, sock string) (string, error) {
	if _, err := os.Stat(sock); err != nil {
		return "", err
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://plugin/Plugin.Activate", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/vnd.docker.plugins.v1.2+json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: %w", sock, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", fmt.Errorf("%s: %w", sock, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: Plugin.Activate: %s", sock, resp.Status)
	}
	return string(body), nil
}

// failed says a check of out failed.
func failed(out []api.Check) bool {
	for _, c := range out {
		if !c.OK {
			return true
		}
	}
	return false
}

// vsctl is the ovs-vsctl command line for this VM's database.
func (s *Service) vsctl() string {
	if s.cfg.OVSDB == "" || s.cfg.OVSDB == DefaultOVSDB {
		return "ovs-vsctl"
	}
	return "ovs-vsctl --db=" + s.cfg.OVSDB
}

// hasGlobalAddress says the link carries an address other than a link-local one.
func hasGlobalAddress(name string) bool {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return false
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.IP.IsGlobalUnicast() {
			return true
		}
	}
	return false
}

// isUnreachable says the error is the network's, not Keystone's answer.
func isUnreachable(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.As(err, &de) || strings.Contains(err.Error(), "connection refused")
}
