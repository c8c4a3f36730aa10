package dockerplugin

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestListenRefusesANameWithAPath(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"../x", "a/b", ".hidden", ""} {
		if l, err := Listen(dir, name); err == nil {
			l.Close()
			t.Errorf("plugin name %q was accepted", name)
		}
	}
	l, err := Listen(dir, "ovn")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Path() != filepath.Join(dir, "ovn.sock") {
		t.Fatalf("socket at %s, want <dir>/ovn.sock where dockerd looks", l.Path())
	}
}

func TestLockDaemonIsExclusive(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockDaemon(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDaemon(dir); err == nil || !strings.Contains(err.Error(), "another ovn-docker daemon") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	again, err := LockDaemon(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}
