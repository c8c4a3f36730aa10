package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// TestCredFileFlag: the flag reaches authentication, and a refused file stops the
// command before any request with a one-line error that does not quote the file.
func TestCredFileFlag(t *testing.T) {
	env := map[string]string{"OS_AUTH_URL": "http://127.0.0.1:1/v3", "OVN_DOCKER_STATE_DIR": t.TempDir()}
	getenv := func(k string) string { return env[k] }
	open := writeCred(t, "token", testToken, 0o644)
	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"--cred-file", open, "list", "networks"}, nil, &out, &errb, getenv)
	if code == 0 || !strings.Contains(errb.String(), "mode 0644") {
		t.Fatalf("exit %d, stderr %q: want a refusal of mode 0644", code, errb.String())
	}
	if strings.Contains(out.String()+errb.String(), testToken) {
		t.Fatalf("the token appears in the output: %q %q", out.String(), errb.String())
	}

	private := writeCred(t, "token", testToken, 0o600)
	out.Reset()
	errb.Reset()
	code = Main(t.Context(), []string{"--cred", testToken, "--cred-file", private, "list", "networks"}, nil, &out, &errb, getenv)
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
	code = Main(t.Context(), []string{"--cred-file", private, "list", "networks"}, nil, &out, &errb, getenv)
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
