package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/docker"
)

// newPauseCmd is what a network sandbox runs: ovn-docker itself, holding the
// namespace open as PID 1 until it is stopped.
func newPauseCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "pause",
		Short:  "Hold a network sandbox's namespace (run inside the sandbox container)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			os.Exit(docker.Pause(cmd.Context()))
			return nil
		},
	}
}
