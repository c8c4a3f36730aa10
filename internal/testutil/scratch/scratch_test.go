package scratch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWhyNamesThisProcessAndWhatIsLeft(t *testing.T) {
	dir := Dir(t)
	f, err := os.Create(filepath.Join(dir, "queue.json.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	why := Why(dir)
	for _, want := range []string{"this test's process", "goroutine", "queue.json.tmp", "left in it"} {
		if !strings.Contains(why, want) {
			t.Errorf("Why = %q, lacks %q", why, want)
		}
	}
}

func TestWhyWithNoHolder(t *testing.T) {
	dir := Dir(t)
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if why := Why(dir); !strings.Contains(why, "no process holds") || !strings.Contains(why, "x") {
		t.Errorf("Why = %q", why)
	}
}

// recorder stands in for the test whose scratch dir cannot be removed.
type recorder struct {
	testing.TB
	failed   bool
	errs     []string
	logs     []string
	cleanups []func()
}

func (r *recorder) Helper()                        {}
func (r *recorder) Name() string                   { return "T/x" }
func (r *recorder) Failed() bool                   { return r.failed }
func (r *recorder) Cleanup(f func())               { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(format string, a ...any) { r.errs = append(r.errs, format) }
func (r *recorder) Logf(format string, a ...any)   { r.logs = append(r.logs, format) }
func (r *recorder) Fatalf(format string, a ...any) { panic(format) }

// A directory that cannot be removed (a mount point in it: EBUSY) is an error after a
// test that passed, a log line after one that failed.
func TestCleanupReportsInsteadOfFailingTwice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	for _, failed := range []bool{false, true} {
		r := &recorder{TB: t, failed: failed}
		dir := Dir(r)
		mnt := filepath.Join(dir, "mnt")
		if err := os.Mkdir(mnt, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
			t.Skipf("mount: %v", err)
		}
		r.cleanups[0]()
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(dir)
		if failed && (len(r.errs) != 0 || len(r.logs) != 1) {
			t.Errorf("after a failed test: errors %q, logs %q; want one log line", r.errs, r.logs)
		}
		if !failed && len(r.errs) != 1 {
			t.Errorf("after a passed test: errors %q; want one", r.errs)
		}
	}
}
