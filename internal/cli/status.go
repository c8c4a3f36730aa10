package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newStatusCmd(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Check what this VM's containers need: agent, Keystone, Neutron, trunk, OVS, Docker, pools",
		Long: `Check, one line each, what the VM's containers need: whether the agent runs, Keystone
and Neutron with the credentials, the VM's port and its trunk, the VM's Open vSwitch and
bridge, dockerd; then the pools with their depth, how many interfaces the VM has, and
the agent's last errors. It exits 1 when a check fails.`,
		Args: cobra.NoArgs,
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
			st, err := b.Status(ctx)
			if err != nil {
				return err
			}
			failed := 0
			for _, c := range st.Checks {
				if !c.OK {
					failed++
				}
			}
			if format == "json" {
				if err := writeJSON(a.stdout, st); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				if st.Agent.Running {
					fmt.Fprintf(tw, "agent\tok\tpid %d, %s, since %s\n", st.Agent.PID, st.Agent.Version, st.Agent.Since.Format("2006-01-02 15:04:05Z07:00"))
				} else {
					fmt.Fprintf(tw, "agent\t-\tnot running: this command did the checks itself\n")
				}
				for _, c := range st.Checks {
					ok := "ok"
					if !c.OK {
						ok = "FAILED"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, ok, oneLine(c.Detail))
				}
				for _, p := range st.Pools {
					detail := fmt.Sprintf("%d ready of %d-%d", p.Ready, p.Min, p.Max)
					if p.Filling > 0 {
						detail += fmt.Sprintf(", %d being made", p.Filling)
					}
					if p.Reason != "" {
						detail += "; " + p.Reason
					}
					fmt.Fprintf(tw, "pool %s\t%s\t%s\n", firstNonEmpty(p.Network, p.NetworkID), "-", detail)
				}
				fmt.Fprintf(tw, "interfaces\t-\t%d\n", st.Attachments)
				if err := tw.Flush(); err != nil {
					return err
				}
				if len(st.LastErrors) > 0 {
					fmt.Fprintln(a.stdout, "last errors:")
					for _, e := range st.LastErrors {
						fmt.Fprintln(a.stdout, "  "+strings.TrimSpace(e))
					}
				}
			}
			if failed > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output format: table or json")
	return cmd
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
