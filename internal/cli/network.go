package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

func newCreateCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "create", Short: "Create a Neutron network (create network NAME)"}
	var subnet, gateway, ipv6 string
	net := &cobra.Command{
		Use:   "network NAME",
		Short: "Create a Neutron network and its subnet",
		Long: `Create a Neutron network (a logical switch in OVN) and its subnet, as the tenant.
With no --subnet, the project's default subnet pool gives the range if there is one;
otherwise a free private /24 that overlaps none of the project's subnets is chosen, and
the command says which.`,
		Example: "  ovn-docker --cred=$TOKEN create network LS1\n  ovn-docker create network LS2 --subnet 10.20.0.0/24 --gateway 10.20.0.1 --ipv6-subnet fd00:20::/64",
		Args:    exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := neutron.CreateNetworkOpts{Name: args[0]}
			var err error
			if subnet != "" {
				if opts.Subnet, err = parsePrefix("--subnet", subnet); err != nil {
					return err
				}
			}
			if gateway != "" {
				if opts.Gateway, err = netip.ParseAddr(gateway); err != nil {
					return fmt.Errorf("--gateway %q is not an IP address", gateway)
				}
			}
			if ipv6 != "" {
				if opts.IPv6, err = parsePrefix("--ipv6-subnet", ipv6); err != nil {
					return err
				}
			}
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			nc, err := a.neutron(ctx)
			if err != nil {
				return err
			}
			n, note, err := nc.CreateNetwork(ctx, opts)
			if err != nil {
				return err
			}
			a.keepNetwork(n.Name, n)
			fmt.Fprintf(a.stdout, "created network %s (%s): %s, MTU %d\n", n.Name, n.ID, note, n.MTU)
			return nil
		},
	}
	net.Flags().StringVar(&subnet, "subnet", "", "IPv4 subnet in CIDR notation")
	net.Flags().StringVar(&gateway, "gateway", "", "IPv4 gateway (default: the subnet's first address)")
	net.Flags().StringVar(&ipv6, "ipv6-subnet", "", "also an IPv6 subnet in CIDR notation")
	cmd.AddCommand(net)
	return cmd
}

func parsePrefix(flag, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%s %q is not a CIDR (like 10.0.5.0/24)", flag, s)
	}
	if p.Masked() != p {
		return p, fmt.Errorf("%s %q has host bits set: did you mean %s?", flag, s, p.Masked())
	}
	return p, nil
}

func newListCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: "List networks or container ports (list networks | list ports)"}
	var format string
	nets := &cobra.Command{
		Use:     "networks",
		Aliases: []string{"network", "net"},
		Short:   "List the Neutron networks of the project",
		Long:    "List the networks the credentials see: name, ID, subnets, MTU and how many containers of this VM are on each.",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			nc, err := a.neutron(ctx)
			if err != nil {
				return err
			}
			nets, err := nc.ListNetworks(ctx)
			if err != nil {
				return err
			}
			counts := map[string]int{}
			if st, err := a.store(); err == nil {
				_ = st.View(ctx, func(s *state.State) error {
					owners := map[string]map[string]bool{}
					for _, at := range s.Attachments {
						if owners[at.NetworkID] == nil {
							owners[at.NetworkID] = map[string]bool{}
						}
						owners[at.NetworkID][at.Owner] = true
					}
					for n, o := range owners {
						counts[n] = len(o)
					}
					return nil
				})
			}
			return printNetworks(a.stdout, format, nets, counts)
		},
	}
	nets.Flags().StringVarP(&format, "format", "f", "table", "output format: table or json")
	ports := newPsCmd(a)
	ports.Use, ports.Aliases = "ports", []string{"port", "containers"}
	cmd.AddCommand(nets, ports)
	return cmd
}

func checkFormat(f string) error {
	if f != "table" && f != "json" {
		return fmt.Errorf("-f %q: use table or json", f)
	}
	return nil
}

type networkRow struct {
	Name       string   `json:"name"`
	ID         string   `json:"id"`
	CIDRs      []string `json:"cidrs"`
	MTU        int      `json:"mtu"`
	Shared     bool     `json:"shared"`
	Containers int      `json:"containers"`
}

func printNetworks(w io.Writer, format string, nets []neutron.Network, counts map[string]int) error {
	rows := make([]networkRow, 0, len(nets))
	for _, n := range nets {
		rows = append(rows, networkRow{Name: n.Name, ID: n.ID, CIDRs: n.CIDRs(), MTU: n.MTU, Shared: n.Shared, Containers: counts[n.ID]})
	}
	if format == "json" {
		return writeJSON(w, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tCIDRS\tMTU\tCONTAINERS")
	for _, r := range rows {
		cidrs := strings.Join(r.CIDRs, ",")
		if cidrs == "" {
			cidrs = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", r.Name, r.ID, cidrs, r.MTU, r.Containers)
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newDeleteCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "delete", Short: "Delete a Neutron network (delete network NAME)"}
	net := &cobra.Command{
		Use:   "network NAME",
		Short: "Delete a Neutron network; refused while containers use it",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			nc, err := a.neutron(ctx)
			if err != nil {
				return err
			}
			n, err := nc.FindNetwork(ctx, args[0])
			if err != nil {
				return err
			}
			if err := networkInUse(ctx, a, nc, n); err != nil {
				return err
			}
			if err := nc.DeleteNetwork(ctx, n.ID); err != nil {
				return err
			}
			a.keepNetwork(args[0], nil)
			a.keepNetwork(n.Name, nil)
			fmt.Fprintf(a.stdout, "deleted network %s (%s)\n", n.Name, n.ID)
			return nil
		},
	}
	cmd.AddCommand(net)
	return cmd
}

// networkInUse refuses while containers (of this VM, or ports of any VM made by
// ovn-docker) are on the network.
func networkInUse(ctx context.Context, a *app, nc *neutron.Client, n *neutron.Network) error {
	var local []string
	if st, err := a.store(); err == nil {
		_ = st.View(ctx, func(s *state.State) error {
			for _, at := range s.Attachments {
				if at.NetworkID == n.ID {
					local = append(local, firstNonEmpty(at.ContainerName, short(at.Container), short(at.Owner)))
				}
			}
			return nil
		})
	}
	if len(local) > 0 {
		sort.Strings(local)
		return fmt.Errorf("network %s is used by %d container interface(s) in this VM (%s): remove them first (ovn-docker rm)",
			n.Name, len(local), strings.Join(local, ", "))
	}
	ports, err := nc.PortsOnNetwork(ctx, n.ID)
	if err != nil {
		return err
	}
	// This VM's own ports that no attachment records were left by an interrupted run
	// (a process killed while Neutron was making its port): gc removes them.
	var mine string
	if vif, err := a.vif(ctx); err == nil {
		mine = neutron.Description(vif)
	}
	var ours, orphans []string
	for _, p := range ports {
		switch {
		case mine != "" && p.Description == mine:
			orphans = append(orphans, p.ID)
		case strings.HasPrefix(p.Description, "ovn-docker vm=") || strings.HasPrefix(p.Name, neutron.NamePrefix):
			ours = append(ours, p.ID)
		}
	}
	if len(orphans) > 0 && len(ours) == 0 {
		return fmt.Errorf("network %s still has %d port(s) of this VM that no container holds (%s), left by an interrupted ovn-docker: run \"ovn-docker gc\", then delete it again",
			n.Name, len(orphans), strings.Join(orphans, ", "))
	}
	ours = append(ours, orphans...)
	if len(ours) > 0 {
		return fmt.Errorf("network %s still has %d container port(s) of other VMs (%s): remove those containers first",
			n.Name, len(ours), strings.Join(ours, ", "))
	}
	return nil
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%q needs %s (see %s --help)", cmd.CommandPath(), names, cmd.CommandPath())
		}
		return nil
	}
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
