// Package scratch gives tests a temporary directory that, when it cannot be removed at
// the end, says why. testing.T.TempDir turns a directory still being written to into a
// second failure ("directory not empty") that hides the first; usually the cause is a
// goroutine or a child process of the test that still runs. Here the cleanup names the
// processes that hold files in the directory and what is left in it: an error when the
// test had passed (something outlived it), a log line when it had already failed.
package scratch

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Dir makes a directory for t, removed when t and its subtests end.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ovn-docker-"+sanitize(t.Name())+"-")
	if err != nil {
		t.Fatalf("scratch dir: %v", err)
	}
	t.Cleanup(func() {
		err := os.RemoveAll(dir)
		if err == nil {
			return
		}
		report := t.Errorf
		if t.Failed() {
			report = t.Logf
		}
		report("scratch dir %s not removed: %v; %s", dir, err, Why(dir))
	})
	return dir
}

// Why says what keeps dir from being removed: the processes with files open in it (this
// test's own process means one of its goroutines still runs) and the entries left.
func Why(dir string) string {
	var parts []string
	if holders := Holders(dir); len(holders) > 0 {
		parts = append(parts, "held open by "+strings.Join(holders, ", "))
	} else {
		parts = append(parts, "no process holds a file in it (something still writes there, or wrote after the test ended)")
	}
	var left []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir && len(left) < 10 {
			rel, _ := filepath.Rel(dir, p)
			left = append(left, rel)
		}
		return nil
	})
	if len(left) > 0 {
		parts = append(parts, "left in it: "+strings.Join(left, " "))
	}
	return strings.Join(parts, "; ")
}

// Holders lists the processes with a file open under dir, as "pid N (command)"; this
// process is named "this test's process".
func Holders(dir string) []string {
	procs, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var out []string
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue
		}
		var files []string
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name()))
			if err == nil && (target == dir || strings.HasPrefix(target, dir+"/")) {
				files = append(files, strings.TrimPrefix(target, dir+"/"))
			}
		}
		if len(files) == 0 {
			continue
		}
		sort.Strings(files)
		who := fmt.Sprintf("pid %d (%s)", pid, comm(pid))
		if pid == self {
			who = fmt.Sprintf("this test's process, pid %d: a goroutine of the test still runs", pid)
		}
		out = append(out, fmt.Sprintf("%s: %s", who, strings.Join(files, " ")))
	}
	return out
}

func comm(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func sanitize(name string) string {
	name = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
	if len(name) > 40 {
		name = name[:40]
	}
	return name
}
