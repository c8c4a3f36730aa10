package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/service"
)

const doctorLong = `Check, one line each, everything this VM needs for its containers, and for each
failure print the command that fixes it: Open vSwitch, the bridge, the uplink on it;
Keystone with the credentials (scoped to a project) and the clock against Keystone's;
Neutron, its trunk extension, the VM's port (by --vif-id or the uplink's MAC), its
trunk, the MTU of the uplink against the VM's network; dockerd; the agent's socket and
the Docker plugin it serves. It exits 1 when a check fails.

doctor works in its own process, with the credentials of the command line, the
environment or the configuration file, whether or not the agent runs. run checks the
VM's own part (Open vSwitch, bridge, uplink) the same way before it asks Neutron for
anything, and refuses with doctor's line.`

var doctorColumns = []column[api.Check]{
	{head: "NAME", key: "name", cell: func(c api.Check) string { return c.Name }},
	{head: "STATUS", key: "ok", cell: func(c api.Check) string { return okWord(c.OK) }},
	{head: "DETAIL", key: "detail", cell: func(c api.Check) string { return oneLine(c.Detail) }},
	{head: "FIX", key: "fix", cell: func(c api.Check) string { return c.Fix }, extra: true},
}

func okWord(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAILED"
}

func newDoctorCmd(a *app) *cobra.Command {
	var out output
	var o service.DoctorOptions
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check everything this VM needs, and say how to fix what fails",
		Long:  doctorLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(out, doctorColumns); err != nil {
				return err
			}
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			checks := a.service().Doctor(ctx, o)
			failed := 0
			for _, c := range checks {
				if !c.OK {
					failed++
				}
			}
			if out.format == "table" && len(out.columns) == 0 {
				// One line per check; a failure's fix on the line under it.
				for _, c := range checks {
					fmt.Fprintf(a.stdout, "%-6s  %-15s  %s\n", okWord(c.OK), c.Name, oneLine(c.Detail))
					if !c.OK && c.Fix != "" {
						fmt.Fprintf(a.stdout, "%-6s  %-15s  fix: %s\n", "", "", c.Fix)
					}
				}
			} else if err := writeList(a.stdout, out, doctorColumns, checks); err != nil {
				return err
			}
			if failed > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("%d of %d checks failed", failed, len(checks))}
			}
			return nil
		},
	}
	env := a.getenv
	cmd.Flags().StringVar(&o.PluginDir, "plugin-dir", envOr(env, "OVN_DOCKER_PLUGIN_DIR", DefaultPluginDir), "where the agent's Docker plugin socket is (OVN_DOCKER_PLUGIN_DIR)")
	cmd.Flags().StringVar(&o.PluginName, "plugin-name", envOr(env, "OVN_DOCKER_PLUGIN_NAME", DefaultPluginName), "the plugin's name (OVN_DOCKER_PLUGIN_NAME)")
	addOutputFlags(cmd, &out)
	return cmd
}
