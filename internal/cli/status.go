package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/api"
)

func newStatusCmd(a *app) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Check what this VM's containers need: agent, Keystone, Neutron, trunk, OVS, Docker, pools",
		Long: `Check, one line each, what the VM's containers need: whether the agent runs, Keystone
and Neutron with the credentials, the VM's port and its trunk, the VM's Open vSwitch and
bridge, dockerd; then the pools with their depth, how many interfaces the VM has, and
the agent's last errors. It exits 1 when a check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(out, statusColumns); err != nil {
				return err
			}
			if len(out.columns) > 0 && (out.format == "json" || out.format == "yaml") {
				return fmt.Errorf("-c picks columns of table and value; -f %s gives the whole report", out.format)
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
			if out.format == "json" || out.format == "yaml" {
				if err := writeData(a.stdout, out.format, st); err != nil {
					return err
				}
			} else {
				if err := writeList(a.stdout, out, statusColumns, statusRows(st)); err != nil {
					return err
				}
				if len(st.LastErrors) > 0 && out.format == "table" && len(out.columns) == 0 {
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
	addOutputFlags(cmd, &out)
	return cmd
}

// statusRow is one line of status: a check, the agent, a pool.
type statusRow struct{ name, state, detail string }

var statusColumns = []column[statusRow]{
	{head: "NAME", key: "name", cell: func(r statusRow) string { return r.name }},
	{head: "STATUS", key: "status", cell: func(r statusRow) string { return r.state }},
	{head: "DETAIL", key: "detail", cell: func(r statusRow) string { return r.detail }},
}

// statusRows lays the report out one line per thing checked.
func statusRows(st *api.Status) []statusRow {
	var rows []statusRow
	if st.Agent.Running {
		rows = append(rows, statusRow{"agent", "ok", fmt.Sprintf("pid %d, %s, since %s", st.Agent.PID, st.Agent.Version, st.Agent.Since.Format("2006-01-02 15:04:05Z07:00"))})
	} else {
		rows = append(rows, statusRow{"agent", "-", "not running: this command did the checks itself"})
	}
	for _, c := range st.Checks {
		ok := "ok"
		if !c.OK {
			ok = "FAILED"
		}
		rows = append(rows, statusRow{c.Name, ok, oneLine(c.Detail)})
	}
	for _, p := range st.Pools {
		detail := fmt.Sprintf("%d ready of %d-%d", p.Ready, p.Min, p.Max)
		if p.Filling > 0 {
			detail += fmt.Sprintf(", %d being made", p.Filling)
		}
		if p.Reason != "" {
			detail += "; " + p.Reason
		}
		rows = append(rows, statusRow{"pool " + firstNonEmpty(p.Network, p.NetworkID), "-", detail})
	}
	return append(rows, statusRow{"interfaces", "-", strconv.Itoa(st.Attachments)})
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
