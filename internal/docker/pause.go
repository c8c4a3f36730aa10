package docker

import (
	"context"
	"errors"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// Pause is the sandbox's init process ("ovn-docker pause"): it holds the sandbox's
// namespaces open, reaps the orphans that the kernel hands to PID 1 of a PID
// namespace, and returns 0 on SIGTERM, SIGINT or when ctx ends. It must not share a
// process with code that waits for its own children, since it reaps every child.
func Pause(ctx context.Context) int {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGCHLD)
	defer signal.Stop(sigs)
	// Children may have exited before the handler was installed.
	reap()
	for {
		select {
		case <-ctx.Done():
			return 0
		case sig := <-sigs:
			if sig != unix.SIGCHLD {
				return 0
			}
			// Signals coalesce, so one SIGCHLD may stand for several exits.
			reap()
		}
	}
}

func reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
