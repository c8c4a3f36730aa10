// Package cni is ovn-docker's CNI plugin, the program a container runtime executes
// (cmd/ovn-docker-cni): a shim. It does no Neutron, OVSDB or netlink work of its own:
// each call goes to the VM's agent over its root-only socket (package api), and the
// agent's answer becomes the CNI result or error. The split is the one of ovn-kubernetes'
// cnishim and cniserver: the runtime's process lives for one call, while the agent
// keeps the engine, the state and the pools, and serves Docker and the CLI the same way.
// A test keeps this package free of gophercloud, libovsdb and netlink.
package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/ovn-docker/ovn-docker/internal/api"
)

// DefaultStateDir is the agent's state directory, which holds its socket.
const DefaultStateDir = "/var/lib/ovn-docker"

// ErrDrift is the plugin's own error code (the spec leaves 100 and up to plugins): CHECK
// found the interface no longer what ADD made.
const ErrDrift uint = 100

// Conf is the plugin's part of a network configuration (a conflist's plugin entry).
type Conf struct {
	types.PluginConf
	// Network is the Neutron network, by name or ID.
	Network string `json:"network"`
	// SecurityGroups are the ports' security groups (names or IDs); none: the project's
	// default group.
	SecurityGroups []string `json:"securityGroups,omitempty"`
	// DefaultRoute says whether the interface carries the default route; unset: only
	// eth0 does.
	DefaultRoute *bool `json:"defaultRoute,omitempty"`
	// StateDir is the agent's state directory (its socket is agent.sock in it).
	StateDir string `json:"stateDir,omitempty"`
	// Timeout bounds one call, as a Go duration ("2m"); the agent's own bounds apply
	// inside it.
	Timeout string `json:"timeout,omitempty"`
	// Pool has the agent keep interfaces of the network ready for the pods: from the
	// first ADD on, at least Min, never more than Max.
	Pool *PoolConf `json:"pool,omitempty"`
	// AllowedAddresses (IP[/MAC] or CIDR[/MAC]), QoSPolicy (name or ID) and
	// PortSecurity (false: off, and no security groups) are the ports' options, as
	// ovn-docker run's --allowed-address, --qos-policy and --no-port-security.
	AllowedAddresses []string `json:"allowedAddresses,omitempty"`
	QoSPolicy        string   `json:"qosPolicy,omitempty"`
	PortSecurity     *bool    `json:"portSecurity,omitempty"`
}

// PoolConf is the "pool" of a configuration.
type PoolConf struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// k8sArgs are the CNI_ARGS a kubelet's runtime passes: they name the port's pod.
type k8sArgs struct {
	types.CommonArgs
	K8S_POD_NAMESPACE types.UnmarshallableString //nolint:revive // the names are the protocol's
	K8S_POD_NAME      types.UnmarshallableString //nolint:revive
}

// Agent is what the plugin asks of the VM's agent; *api.Client implements it.
type Agent interface {
	Attach(ctx context.Context, r api.AttachRequest) (*api.Attachment, error)
	Detach(ctx context.Context, r api.DetachRequest) error
	Check(ctx context.Context, r api.CheckRequest) error
	Collect(ctx context.Context, r api.CollectRequest) (*api.CollectResult, error)
	NetworkReady(ctx context.Context, network string) error
}

var _ Agent = (*api.Client)(nil)

// Plugin answers the runtime's calls through an agent.
type Plugin struct {
	// Dial reaches the agent of a state directory; api.ErrNoAgent when none runs.
	Dial func(ctx context.Context, stateDir string) (Agent, error)
	// Print writes a result for the runtime (types.PrintResult by default).
	Print func(r types.Result, cniVersion string) error
}

// New is the plugin of the real agent.
func New() *Plugin {
	return &Plugin{
		Dial:  func(ctx context.Context, dir string) (Agent, error) { return api.Dial(ctx, dir) },
		Print: types.PrintResult,
	}
}

// Funcs are the plugin's CNI 1.1 operations, for skel.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status}
}

// Versions are the spec versions the plugin speaks; GC and STATUS are 1.1's.
var Versions = version.All

// About is what the plugin says of itself to VERSION callers and on a bad call.
const About = "ovn-docker-cni: pod interfaces as Neutron ports (trunk subports of the VM's port), through the VM's ovn-docker agent"

func loadConf(data []byte) (*Conf, error) {
	c := &Conf{}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "ovn-docker-cni: the network configuration is not valid JSON", err.Error())
	}
	if c.Network == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, `ovn-docker-cni: the configuration names no Neutron network ("network": NAME or ID)`, "")
	}
	if c.Name == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, `ovn-docker-cni: the configuration has no "name"`, "")
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if p := c.Pool; p != nil && (p.Min < 0 || p.Max < p.Min || p.Max == 0) {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf(`ovn-docker-cni: "pool": min %d, max %d: want 0 <= min <= max, max > 0`, p.Min, p.Max), "")
	}
	return c, nil
}

func (c *Conf) context() (context.Context, context.CancelFunc, error) {
	d := 2 * time.Minute
	if c.Timeout != "" {
		var err error
		if d, err = time.ParseDuration(c.Timeout); err != nil || d <= 0 {
			return nil, nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("ovn-docker-cni: timeout %q is not a positive duration", c.Timeout), "")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	return ctx, cancel, nil
}

// agent reaches the agent; one that does not run is "try again later" (or, for STATUS,
// "plugin not available"): the runtime retries, and nothing was made.
func (p *Plugin) agent(ctx context.Context, c *Conf, down uint) (Agent, error) {
	a, err := p.Dial(ctx, c.StateDir)
	if err == nil {
		return a, nil
	}
	sock := filepath.Join(c.StateDir, api.SocketName)
	if errors.Is(err, api.ErrNoAgent) {
		return nil, types.NewError(down, "ovn-docker-cni: the ovn-docker agent does not run", "no agent answers on "+sock+": start it (ovn-docker daemon)")
	}
	return nil, types.NewError(down, "ovn-docker-cni: the ovn-docker agent does not answer", err.Error())
}

// begin reads the configuration and reaches the agent within the call's time: what
// every operation does first. down is the code when the agent does not answer.
func (p *Plugin) begin(args *skel.CmdArgs, down uint) (*Conf, Agent, context.Context, context.CancelFunc, error) {
	c, err := loadConf(args.StdinData)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, cancel, err := c.context()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	a, err := p.agent(ctx, c, down)
	if err != nil {
		cancel()
		return nil, nil, nil, nil, err
	}
	return c, a, ctx, cancel, nil
}

// cniError turns the agent's failure into the CNI's: its kind decides the code.
func cniError(what string, err error) error {
	code := types.ErrInternal
	switch api.KindOf(err) {
	case api.KindInvalid, api.KindNotFound:
		code = types.ErrInvalidNetworkConfig
	case api.KindUnavailable, api.KindConflict:
		code = types.ErrTryAgainLater
	case api.KindDrift:
		code = ErrDrift
	}
	return types.NewError(code, "ovn-docker-cni: "+what+": "+err.Error(), "")
}

// Add gives the container its interface and prints the result.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	c, a, ctx, cancel, err := p.begin(args, types.ErrTryAgainLater)
	if err != nil {
		return err
	}
	defer cancel()
	var k8s k8sArgs
	if err := types.LoadArgs(args.Args, &k8s); err != nil {
		return types.NewError(types.ErrInvalidEnvironmentVariables, "ovn-docker-cni: CNI_ARGS: "+err.Error(), "")
	}
	name := ""
	if k8s.K8S_POD_NAME != "" {
		name = string(k8s.K8S_POD_NAMESPACE) + "/" + string(k8s.K8S_POD_NAME)
	}
	defRoute := args.IfName == "eth0"
	if c.DefaultRoute != nil {
		defRoute = *c.DefaultRoute
	}
	req := api.AttachRequest{
		Owner: api.CNIOwner(c.Name, args.ContainerID), Network: c.Network, SecurityGroups: c.SecurityGroups,
		NetNS: args.Netns, IfName: args.IfName, DefaultRoute: defRoute,
		Container: args.ContainerID, ContainerName: name,
	}
	if c.Pool != nil {
		req.PoolMin, req.PoolMax = c.Pool.Min, c.Pool.Max
	}
	req.AllowedAddresses, req.QoSPolicy = c.AllowedAddresses, c.QoSPolicy
	req.NoPortSecurity = c.PortSecurity != nil && !*c.PortSecurity
	// A pod's hostname is its name: the port's dns_name, where Neutron has DNS.
	req.Hostname = string(k8s.K8S_POD_NAME)
	att, err := a.Attach(ctx, req)
	if err != nil {
		return cniError("add "+args.IfName, err)
	}
	res, err := result(att, args.Netns, defRoute)
	if err != nil {
		return types.NewError(types.ErrInternal, "ovn-docker-cni: the agent's answer: "+err.Error(), "")
	}
	return p.Print(res, c.CNIVersion)
}

// result is the CNI result of an attachment: the VM's end of the pair, the container's
// end with its MAC and MTU, its addresses with their gateways, the default routes when
// it carries them, and the subnets' nameservers.
func result(att *api.Attachment, netns string, defRoute bool) (*current.Result, error) {
	res := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: att.HostIf},
			{Name: att.Interface.Interface, Mac: att.MAC, Mtu: att.MTU, Sandbox: netns},
		},
		DNS: types.DNS{Nameservers: att.DNS},
	}
	gateways := map[bool]net.IP{} // by "is IPv4"
	for _, g := range att.Gateways {
		if ip := net.ParseIP(g); ip != nil {
			gateways[ip.To4() != nil] = ip
		}
	}
	for _, s := range att.IPs {
		ip, ipnet, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", s, err)
		}
		v4 := ip.To4() != nil
		ipnet.IP = ip
		res.IPs = append(res.IPs, &current.IPConfig{Interface: current.Int(1), Address: *ipnet, Gateway: gateways[v4]})
		if gw := gateways[v4]; defRoute && gw != nil {
			dst := net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
			if !v4 {
				dst = net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
			}
			res.Routes = append(res.Routes, &types.Route{Dst: dst, GW: gw})
		}
	}
	return res, nil
}

// Del releases the interface. Nothing to release (a second DEL, an ADD that never
// finished, no netns) is success.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	c, a, ctx, cancel, err := p.begin(args, types.ErrTryAgainLater)
	if err != nil {
		return err
	}
	defer cancel()
	if err := a.Detach(ctx, api.DetachRequest{Owner: api.CNIOwner(c.Name, args.ContainerID), IfName: args.IfName}); err != nil {
		return cniError("del "+args.IfName, err)
	}
	return nil
}

// Check compares the interface with prevResult and with the world.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	c, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	ctx, cancel, err := c.context()
	if err != nil {
		return err
	}
	defer cancel()
	req := api.CheckRequest{Owner: api.CNIOwner(c.Name, args.ContainerID), IfName: args.IfName}
	if c.RawPrevResult != nil {
		if err := version.ParsePrevResult(&c.PluginConf); err != nil {
			return types.NewError(types.ErrDecodingFailure, "ovn-docker-cni: prevResult: "+err.Error(), "")
		}
		prev, err := current.NewResultFromResult(c.PrevResult)
		if err != nil {
			return types.NewError(types.ErrDecodingFailure, "ovn-docker-cni: prevResult: "+err.Error(), "")
		}
		req.MAC, req.IPs = ofInterface(prev, args.IfName, args.Netns)
	}
	a, err := p.agent(ctx, c, types.ErrTryAgainLater)
	if err != nil {
		return err
	}
	if err := a.Check(ctx, req); err != nil {
		return cniError("check "+args.IfName, err)
	}
	return nil
}

// ofInterface is the MAC and addresses a result gave the container's interface ifName.
func ofInterface(r *current.Result, ifName, netns string) (mac string, ips []string) {
	idx := -1
	for i, itf := range r.Interfaces {
		if itf.Name == ifName && (itf.Sandbox != "" || netns == "") {
			idx, mac = i, itf.Mac
		}
	}
	for _, ip := range r.IPs {
		if ip.Interface == nil || *ip.Interface == idx {
			ips = append(ips, ip.Address.String())
		}
	}
	return mac, ips
}

// GC releases this network's interfaces that the runtime does not list as valid.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	c, a, ctx, cancel, err := p.begin(args, types.ErrTryAgainLater)
	if err != nil {
		return err
	}
	defer cancel()
	req := api.CollectRequest{OwnerPrefix: api.CNIOwnerPrefix(c.Name), Keep: []api.AttachmentKey{}}
	for _, v := range c.ValidAttachments {
		req.Keep = append(req.Keep, api.AttachmentKey{Owner: api.CNIOwner(c.Name, v.ContainerID), IfName: v.IfName})
	}
	if _, err := a.Collect(ctx, req); err != nil {
		return cniError("gc", err)
	}
	return nil
}

// Status says whether an ADD can work now: the agent answers, and through it Keystone,
// Neutron, the VM's OVSDB and bridge; and the network exists. Otherwise code 50, and why.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	c, a, ctx, cancel, err := p.begin(args, types.ErrPluginNotAvailable)
	if err != nil {
		return err
	}
	defer cancel()
	if err := a.NetworkReady(ctx, c.Network); err != nil {
		return types.NewError(types.ErrPluginNotAvailable, "ovn-docker-cni: not ready: "+err.Error(), "")
	}
	return nil
}
