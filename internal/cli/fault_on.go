//go:build faultinject

package cli

import (
	"os"
	"strings"
	"syscall"
)

// faultHook kills the process with SIGKILL right after the step named in
// OVN_DOCKER_FAULT (comma-separated names, or "step@N" for its Nth time). Built only
// with -tags faultinject: the tests use it to prove that an interrupted run leaves
// nothing gc cannot finish.
func faultHook(getenv func(string) string) func(step string) {
	spec := getenv("OVN_DOCKER_FAULT")
	if spec == "" {
		return nil
	}
	want := map[string]bool{}
	for _, s := range strings.Split(spec, ",") {
		want[strings.TrimSpace(s)] = true
	}
	return func(step string) {
		if want[step] {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never returns: the kernel ends the process
		}
	}
}

// faultWanted says OVN_DOCKER_FAULT names a fault that is not a kill: setup-check makes
// setup's check after the move fail, to prove that the VM is put back.
func faultWanted(getenv func(string) string, name string) bool {
	for _, s := range strings.Split(getenv("OVN_DOCKER_FAULT"), ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}
