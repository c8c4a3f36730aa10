package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// TestCredFileFlag: the flag reaches authentication, and a refused file stops the
// command before any request with a one-line error that does not quote the file.
func TestCredFileFlag(t *testing.T) {
	env := map[string]string{"OS_AUTH_URL": "http://127.0.0.1:1/v3"}
	getenv := func(k string) string { return env[k] }
	open := writeCred(t, "token", testToken, 0o644)
	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"--cred-file", open, "list", "networks"}, &out, &errb, getenv)
	if code == 0 || !strings.Contains(errb.String(), "mode 0644") {
		t.Fatalf("exit %d, stderr %q: want a refusal of mode 0644", code, errb.String())
	}
	if strings.Contains(out.String()+errb.String(), testToken) {
		t.Fatalf("the token appears in the output: %q %q", out.String(), errb.String())
	}

	private := writeCred(t, "token", testToken, 0o600)
	out.Reset()
	errb.Reset()
	code = Main(t.Context(), []string{"--cred", testToken, "--cred-file", private, "list", "networks"}, &out, &errb, getenv)
	if code == 0 || !strings.Contains(errb.String(), "not both") {
		t.Fatalf("exit %d, stderr %q: want a refusal of --cred with --cred-file", code, errb.String())
	}

	// A good file gets as far as Keystone, which refuses the token at once: the token
	// was used. (A Keystone that is not there would be retried until --timeout.)
	var mu sync.Mutex
	var validated []string
	keystone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		validated = append(validated, r.Header.Get("X-Subject-Token"))
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer keystone.Close()
	env["OS_AUTH_URL"] = keystone.URL + "/v3"
	out.Reset()
	errb.Reset()
	code = Main(t.Context(), []string{"--cred-file", private, "list", "networks"}, &out, &errb, getenv)
	if code == 0 || !strings.Contains(errb.String(), keystone.URL) || !strings.Contains(errb.String(), "refused the token") {
		t.Fatalf("exit %d, stderr %q: want Keystone's refusal of the token", code, errb.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(validated) == 0 || validated[0] != testToken {
		t.Fatalf("Keystone was asked to validate %q, want the file's token", validated)
	}
	if strings.Contains(out.String()+errb.String(), testToken) {
		t.Fatalf("the token appears in the output: %q %q", out.String(), errb.String())
	}
}
