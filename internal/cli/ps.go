package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/state"
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
			st, err := a.store()
			if err != nil {
				return err
			}
			var atts []*state.Attachment
			if err := st.View(ctx, func(s *state.State) error { atts = s.Sorted(); return nil }); err != nil {
				return err
			}
			rows := make([]psRow, 0, len(atts))
			for _, at := range atts {
				rows = append(rows, psRow{
					Container: at.Container, Name: at.ContainerName, Sandbox: at.Owner, Network: at.NetworkName,
					NetworkID: at.NetworkID, Interface: at.IfName, VLAN: at.VLAN, MAC: at.MAC, IPs: at.IPs,
					Port: at.PortID, HostIf: at.HostIf, State: string(at.Phase), Mode: at.Mode, Created: at.Created,
					Error: at.Error,
				})
			}
			if format == "json" {
				return writeJSON(a.stdout, rows)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER\tNAME\tNETWORK\tIFACE\tVLAN\tMAC\tIP\tPORT\tSTATE")
			for _, r := range rows {
				ips := strings.Join(r.IPs, ",")
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", dash(short(r.Container)), dash(r.Name),
					dash(r.Network), dash(r.Interface), r.VLAN, dash(r.MAC), dash(ips), dash(r.Port), r.State)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output format: table or json")
	return cmd
}

type psRow struct {
	Container string    `json:"container"`
	Name      string    `json:"name"`
	Sandbox   string    `json:"sandbox"`
	Network   string    `json:"network"`
	NetworkID string    `json:"network_id"`
	Interface string    `json:"interface"`
	VLAN      int       `json:"vlan"`
	MAC       string    `json:"mac"`
	IPs       []string  `json:"ips"`
	Port      string    `json:"port_id"`
	HostIf    string    `json:"host_interface"`
	State     string    `json:"state"`
	Mode      string    `json:"mode"`
	Created   time.Time `json:"created"`
	Error     string    `json:"error,omitempty"`
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
