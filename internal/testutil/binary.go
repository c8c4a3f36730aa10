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
// dir and returns its path. TestMain calls it once per test binary.
func BuildBinary(dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out := filepath.Join(dir, "ovn-docker")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/ovn-docker")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ovn-docker: %v\n%s", err, strings.TrimSpace(string(b)))
	}
	return out, nil
}
