package service

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const testToken = "gAAAAABtesttokenvalue0123456789"

// writeCred writes content to a file of the test's temp dir with exactly mode perm.
func writeCred(t *testing.T, name, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod, not WriteFile's mode: the umask would narrow it.
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadCredFileAccepts(t *testing.T) {
	uid := os.Geteuid()
	for _, tc := range []struct {
		name    string
		content string
		perm    os.FileMode
	}{
		{"mode 0600", testToken, 0o600},
		{"mode 0400", testToken, 0o400},
		{"trailing newline", testToken + "\n", 0o600},
		{"surrounding blanks", "  " + testToken + " \r\n", 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readCredFile(writeCred(t, "token", tc.content, tc.perm), uid)
			if err != nil {
				t.Fatal(err)
			}
			if got != testToken {
				t.Fatalf("token %q, want %q", got, testToken)
			}
		})
	}
	t.Run("symlink to a private file", func(t *testing.T) {
		target := writeCred(t, "token", testToken, 0o600)
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if got, err := readCredFile(link, uid); err != nil || got != testToken {
			t.Fatalf("got %q, %v", got, err)
		}
	})
}

func TestReadCredFileRefuses(t *testing.T) {
	uid := os.Geteuid()
	for _, tc := range []struct {
		name    string
		path    func(t *testing.T) string
		uid     int
		wantErr string
	}{
		{"readable by group", func(t *testing.T) string { return writeCred(t, "token", testToken, 0o640) }, uid, "mode 0640"},
		{"readable by all", func(t *testing.T) string { return writeCred(t, "token", testToken, 0o644) }, uid, "mode 0644"},
		{"writable by all", func(t *testing.T) string { return writeCred(t, "token", testToken, 0o602) }, uid, "mode 0602"},
		{"executable", func(t *testing.T) string { return writeCred(t, "token", testToken, 0o700) }, uid, "mode 0700"},
		{"another owner", func(t *testing.T) string { return writeCred(t, "token", testToken, 0o600) }, uid + 1, "belongs to uid"},
		{"empty", func(t *testing.T) string { return writeCred(t, "token", " \n", 0o600) }, uid, "is empty"},
		{"two words", func(t *testing.T) string { return writeCred(t, "token", testToken+" "+testToken, 0o600) }, uid, "more than one word"},
		{"too large", func(t *testing.T) string {
			return writeCred(t, "token", strings.Repeat("x", maxCredFile+1), 0o600)
		}, uid, "larger than"},
		{"missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, uid, "no such file"},
		{"directory", func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "dir")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			return d
		}, uid, "not a regular file"},
		{"fifo", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "fifo")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, uid, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.path(t)
			got, err := readCredFile(p, tc.uid)
			if err == nil {
				t.Fatalf("accepted, token %q", got)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--cred-file") {
				t.Fatalf("error %q, want one about --cred-file saying %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Fatalf("the error quotes the token: %q", err)
			}
		})
	}
}
