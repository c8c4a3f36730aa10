// Command pausehelper stands in for the ovn-docker binary in the pause image of the
// integration tests: "pause" runs docker.Pause, "orphan" leaves behind a child that
// outlives it (the kernel hands that child to PID 1), "linger" is that child: it runs
// until SIGTERM.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ovn-docker/ovn-docker/internal/docker"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pausehelper pause|orphan|linger")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "pause":
		os.Exit(docker.Pause(context.Background()))
	case "orphan":
		// Not waited for: this process exits first and the child is reparented.
		if _, err := os.StartProcess(os.Args[0], []string{os.Args[0], "linger"}, &os.ProcAttr{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "linger":
		// Until the test ends it (SIGTERM), so that it sees it and then sees it reaped.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		<-sigs
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}
