package cli

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/service"
)

func newCreateCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "create", Short: "Create a Neutron network (create network NAME)"}
	var req api.CreateNetworkRequest
	var out output
	var ipv4 bool
	net := &cobra.Command{
		Use:   "network NAME",
		Short: "Create a Neutron network and its subnet",
		Long: `Create a Neutron network (a logical switch in OVN) and its subnet, as the tenant.
With no --subnet, the project's default subnet pool gives the range if there is one;
otherwise a free private /24 that overlaps none of the project's subnets is chosen, and
the command says which.`,
		Example: "  ovn-docker --cred=$TOKEN create network LS1\n  ovn-docker create network LS2 --subnet 10.20.0.0/24 --gateway 10.20.0.1 --ipv6-subnet fd00:20::/64\n" +
			"  ovn-docker create network V6 --ipv4=false --ipv6-subnet fd00:77::/64 --ipv6-address-mode slaac --ipv6-ra-mode slaac\n" +
			"  ovn-docker create network LS3 --subnet-pool shared-v4 --prefix-length 26",
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			if err := checkOutput(out, networkColumns); err != nil {
				return err
			}
			// Bad input is refused before anything is asked of anyone.
			if req.Subnet != "" {
				if _, err := service.ParsePrefix("--subnet", req.Subnet); err != nil {
					return err
				}
			}
			if req.Gateway != "" {
				if _, err := netip.ParseAddr(req.Gateway); err != nil {
					return fmt.Errorf("--gateway %q is not an IP address", req.Gateway)
				}
			}
			if req.IPv6Subnet != "" {
				if _, err := service.ParsePrefix("--ipv6-subnet", req.IPv6Subnet); err != nil {
					return err
				}
			}
			req.NoIPv4 = !ipv4
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			b, err := a.backend(ctx)
			if err != nil {
				return err
			}
			res, err := b.CreateNetwork(ctx, req)
			if err != nil {
				return err
			}
			n := res.Network
			if cmd.Flags().Changed("format") || cmd.Flags().Changed("column") {
				return writeOne(a.stdout, out, networkColumns, n)
			}
			fmt.Fprintf(a.stdout, "created network %s (%s): %s, MTU %d\n", n.Name, n.ID, res.Note, n.MTU)
			return nil
		},
	}
	net.Flags().StringVar(&req.Subnet, "subnet", "", "IPv4 subnet in CIDR notation")
	net.Flags().StringVar(&req.Gateway, "gateway", "", "IPv4 gateway (default: the subnet's first address)")
	net.Flags().StringVar(&req.IPv6Subnet, "ipv6-subnet", "", "also an IPv6 subnet in CIDR notation")
	net.Flags().BoolVar(&ipv4, "ipv4", true, "an IPv4 subnet too (--ipv4=false with --ipv6-subnet: IPv6 only)")
	net.Flags().StringVar(&req.IPv6AddressMode, "ipv6-address-mode", "",
		"how ports get IPv6 addresses: slaac, dhcpv6-stateful, dhcpv6-stateless or none (static) (default: dhcpv6-stateful, none with --no-dhcp)")
	net.Flags().StringVar(&req.IPv6RAMode, "ipv6-ra-mode", "",
		"what a router advertises on the IPv6 subnet: slaac, dhcpv6-stateful, dhcpv6-stateless or none (default: dhcpv6-stateful when neither mode is given, otherwise unset)")
	net.Flags().StringVar(&req.SubnetPool, "subnet-pool", "", "take the IPv4 subnet from this Neutron subnet pool (name or ID; a shared pool will do)")
	net.Flags().StringVar(&req.IPv6SubnetPool, "ipv6-subnet-pool", "", "take an IPv6 subnet from this Neutron subnet pool (name or ID)")
	net.Flags().IntVar(&req.PrefixLength, "prefix-length", 0, "size of the IPv4 subnet taken from --subnet-pool, or chosen for you (default: the pool's default, else 24)")
	net.Flags().IntVar(&req.IPv6PrefixLength, "ipv6-prefix-length", 0, "size of the IPv6 subnet taken from --ipv6-subnet-pool (default: the pool's default)")
	net.Flags().BoolVar(&req.NoDHCP, "no-dhcp", false, "DHCP and DHCPv6 off on the subnets (addresses are still Neutron's, set statically)")
	addOutputFlags(net, &out)
	net.Flags().Lookup("format").Usage += " (default: a sentence saying how the range was chosen)"
	cmd.AddCommand(net)
	return cmd
}

func newListCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: "List networks or container ports (list networks | list ports)"}
	var out output
	nets := &cobra.Command{
		Use:     "networks",
		Aliases: []string{"network", "net"},
		Short:   "List the Neutron networks of the project",
		Long:    "List the networks the credentials see: name, ID, subnets, MTU and how many containers of this VM are on each.",
		Args:    cobra.NoArgs,
		RunE:    listRunE(a, &out, networkColumns, api.Backend.Networks),
	}
	addOutputFlags(nets, &out)
	ports := newPsCmd(a)
	ports.Use, ports.Aliases = "ports", []string{"port", "containers"}
	cmd.AddCommand(nets, ports)
	return cmd
}

// networkColumns are list networks' and create network's columns.
var networkColumns = []column[api.Network]{
	{head: "NAME", key: "name", cell: func(n api.Network) string { return n.Name }},
	{head: "ID", key: "id", cell: func(n api.Network) string { return n.ID }},
	{head: "CIDRS", key: "cidrs", cell: func(n api.Network) string { return strings.Join(n.CIDRs, ",") }},
	{head: "MTU", key: "mtu", cell: func(n api.Network) string { return strconv.Itoa(n.MTU) }},
	{head: "CONTAINERS", key: "containers", cell: func(n api.Network) string { return strconv.Itoa(n.Containers) }},
	{head: "SHARED", key: "shared", cell: func(n api.Network) string { return strconv.FormatBool(n.Shared) }, extra: true},
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
			b, err := a.backend(ctx)
			if err != nil {
				return err
			}
			n, err := b.DeleteNetwork(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "deleted network %s (%s)\n", n.Name, n.ID)
			return nil
		},
	}
	cmd.AddCommand(net)
	return cmd
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%q needs %s (see %s --help)", cmd.CommandPath(), names, cmd.CommandPath())
		}
		return nil
	}
}
