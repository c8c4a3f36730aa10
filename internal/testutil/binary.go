package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// BuildBinary builds ovn-docker (static: it is also the sandboxes' pause process) into
// dir and returns its path. TestMain calls it once per test binary. Build tags (such as
// faultinject) give a test build; its file name carries them.
func BuildBinary(dir string, tags ...string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	name := "ovn-docker"
	args := []string{"build"}
	if len(tags) > 0 {
		name += "-" + strings.Join(tags, "-")
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", append(args, "-o", out, "./cmd/ovn-docker")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ovn-docker: %v\n%s", err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

// BuildCNIShim builds ovn-docker-cni into dir/ovn-docker-cni: a runtime finds a CNI
// plugin by its configuration's type in its binary directories, so the file's name is
// the type's.
func BuildCNIShim(dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	out := filepath.Join(dir, "ovn-docker-cni")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/ovn-docker-cni")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ovn-docker-cni: %v\n%s", err, strings.TrimSpace(string(b)))
	}
	return out, nil
}
