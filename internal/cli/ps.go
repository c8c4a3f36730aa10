package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/api"
)

func newPsCmd(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List this VM's container interfaces: network, VLAN, MAC, IP, Neutron port",
		Long:  "List the container interfaces ovn-docker made in this VM, from its local state (no credentials needed).",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			b, err := a.backend(ctx)
			if err != nil {
				return err
			}
			rows, err := b.Interfaces(ctx)
			if err != nil {
				return err
			}
			if format == "json" {
				if rows == nil {
					rows = []api.Interface{}
				}
				return writeJSON(a.stdout, rows)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER\tNAME\tNETWORK\tIFACE\tVLAN\tMAC\tIP\tPORT\tSTATE")
			for _, r := range rows {
				ips := strings.Join(r.IPs, ",")
				st := r.State
				if r.Note != "" {
					st += " (" + r.Note + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", dash(short(r.Container)), dash(r.Name),
					dash(r.Network), dash(r.Interface), r.VLAN, dash(r.MAC), dash(ips), dash(r.Port), st)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output format: table or json")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
