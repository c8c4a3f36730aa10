package cli

import (
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/resolved"
	"github.com/ovn-docker/ovn-docker/internal/vmsetup"
)

const setupLong = `Prepare this VM for its containers, as a cloud image boots it (its address on the
uplink, no bridge): create the Open vSwitch bridge (--bridge) with the uplink's MAC,
add the uplink (--uplink) to it untagged, and move the uplink's addresses and routes
onto the bridge, with netlink, so that the VM keeps its address; where systemd-resolved
holds the uplink's DNS servers and domains (DHCP through systemd-networkd), the bridge
gets them too, since resolved uses a link's servers only while it holds an address
(resolv.conf names no interface: without resolved there is nothing to move). Each step has its
undo: the VM must still reach Keystone and Neutron (and the gateway, if it answered
before) afterwards, or everything is put back as it was. Then, in trunk mode, the VM's
Neutron port is made a trunk parent.

Run it again: with the uplink on the bridge and the addresses on the bridge, it changes
nothing. --dry-run says what it would do. The bridge lives in Open vSwitch's database
across reboots; the address does not: have the distribution's network configuration
give the bridge its address (netplan: an "openvswitch" bridge with the uplink as its
interface, DHCP on the bridge), or run setup at boot, before the agent.`

func newSetupCmd(a *app) *cobra.Command {
	var dryRun, noTrunk bool
	var datapath string
	var reach []string
	cmd := &cobra.Command{
		Use:     "setup",
		Short:   "Prepare the VM: its bridge, the uplink on it, its addresses moved, its port a trunk parent",
		Long:    setupLong,
		Example: "  ovn-docker setup --dry-run\n  ovn-docker --os-cloud mycloud setup\n  ovn-docker setup --datapath netdev --reach 192.0.2.10:9696",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if datapath != "system" && datapath != "netdev" {
				return fmt.Errorf("--datapath %q: use system (the kernel's) or netdev (userspace)", datapath)
			}
			for _, hp := range reach {
				if _, _, err := net.SplitHostPort(hp); err != nil {
					return fmt.Errorf("--reach %q: want HOST:PORT", hp)
				}
			}
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			svc := a.service()
			// Keystone and Neutron, as the credentials reach them now, are what the VM
			// must still reach after the move.
			nc, err := svc.Neutron(ctx)
			switch {
			case err == nil:
				sess, _ := svc.Session(ctx)
				for _, u := range []string{sess.Provider.IdentityEndpoint, nc.ServiceClient().Endpoint} {
					if hp, err := hostPort(u); err == nil {
						reach = append(reach, hp)
					}
				}
			case a.credsGiven:
				return err
			default:
				fmt.Fprintf(a.stderr, "ovn-docker: no OpenStack credentials (%v): only --reach and the gateway are checked, and the VM's port is left as it is\n", oneLine(err.Error()))
				noTrunk = true
			}
			sw, err := svc.OVS(ctx)
			if err != nil {
				return err
			}
			cfg := vmsetup.Config{
				Bridge: a.s.bridge, Uplink: a.s.uplink, Datapath: datapath, Switch: sw,
				Reach: reach, DryRun: dryRun, Out: a.stdout, FailCheck: faultWanted(a.getenv, "setup-check"),
			}
			// The uplink's DNS, where systemd-resolved holds it per link, moves too.
			switch dns, err := resolved.Open(ctx); {
			case err == nil:
				defer dns.Close()
				cfg.DNS = dns
			case errors.Is(err, resolved.ErrNotRunning):
				a.log.Debug("setup: no DNS to move per link", "why", err)
			default:
				return err
			}
			res, err := vmsetup.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if res.Changed {
				fmt.Fprintf(a.stdout, "%s is on %s, which holds %v; the VM still reaches %v\n", a.s.uplink, a.s.bridge, res.Moved, reach)
			}
			if !dryRun {
				n, err := svc.EnsureGuard(ctx)
				if err != nil {
					return err
				}
				if n > 0 {
					fmt.Fprintf(a.stdout, "ra guard installed on %s: containers' router advertisements, redirects and DHCP server replies are dropped\n", a.s.bridge)
				}
			}
			if noTrunk || dryRun || a.s.mode != string(neutron.ModeTrunk) {
				return nil
			}
			vif, err := svc.VIF(ctx)
			if err != nil {
				return err
			}
			t, err := nc.EnsureTrunk(ctx, vif)
			if errors.Is(err, neutron.ErrConflict) || errors.Is(err, neutron.ErrPortInUse) {
				return fmt.Errorf("%w; this Neutron makes no trunk of a port in use: create the trunk on the port before the VM boots "+
					"(openstack network trunk create --parent-port PORT NAME, then boot with that port), or use --mode binding-profile with admin credentials", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "the VM's port %s is the parent of trunk %s\n", vif, t.ID)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be done, and do nothing")
	cmd.Flags().StringVar(&datapath, "datapath", "system", "the bridge's datapath: system (the kernel's) or netdev (userspace OVS)")
	cmd.Flags().StringArrayVar(&reach, "reach", nil, "HOST:PORT the VM must still reach afterwards, besides Keystone and Neutron (repeatable)")
	cmd.Flags().BoolVar(&noTrunk, "no-trunk", false, "leave the VM's Neutron port as it is")
	return cmd
}

// hostPort is a URL's host:port, the scheme's port when it names none.
func hostPort(u string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	port := p.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[p.Scheme]
	}
	return net.JoinHostPort(p.Hostname(), port), nil
}
