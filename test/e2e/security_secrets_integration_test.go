//go:build integration

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// noSecret fails the test when any of the secrets appears in text.
func noSecret(t *testing.T, where, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("a secret (%d characters, starting %.4s) appears in %s", len(s), s, where)
		}
	}
}

// tokenFile writes the token to a file of the given mode in a directory of its own.
func tokenFile(t *testing.T, token string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecuritySecrets: no token or password reaches a log line (at debug level), an
// error message, the state, Docker's or Neutron's records, or a file others can read,
// with every kind of credential; --cred-file takes the token from a file only its owner
// can read; and ovn-docker listens on no TCP or UDP port, in the VM or in the sandbox.
func TestSecuritySecrets(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	ls := tenantNetwork(t, vm, uniq("secret"))
	t.Cleanup(func() { cleanVM(t, vm) })
	ctx := context.Background()

	pc, _ := s.Provider(t, "tenant-a")
	token, password := pc.TokenID, vm.Env["OS_PASSWORD"]
	ident := identityClient(t, pc)
	user, err := tokens.Get(ctx, ident, token).ExtractUser()
	if err != nil {
		t.Fatal(err)
	}
	acSecret := "ovn-docker-sec-" + strings.ReplaceAll(uniq("appcred"), "-", "")
	ac, err := applicationcredentials.Create(ctx, ident, user.ID, applicationcredentials.CreateOpts{
		Name: uniq("ovn-docker-sec"), Secret: acSecret, ExpiresAt: ptrTime(time.Now().Add(time.Hour)),
	}).Extract()
	if err != nil {
		t.Fatalf("create an application credential: %v", err)
	}
	t.Cleanup(func() { _ = applicationcredentials.Delete(ctx, ident, user.ID, ac.ID).ExtractErr() })
	const badToken = "gAAAAABsecuritytestnotatoken0123456789abcdefghijklmnop"
	secrets := []string{token, password, acSecret, badToken}
	noPassword := []string{"OS_PASSWORD=", "OS_USERNAME="}

	var outputs []string // everything ovn-docker printed, for the cached tokens below
	t.Run("logs and errors", func(t *testing.T) {
		run := []string{"--log-level", "debug", "--network", ls, "run", "--rm", "busybox:local", "echo", "hello"}
		for _, tc := range []struct {
			name string
			env  []string
			args []string
			ok   bool
		}{
			{"password (OS_*)", nil, run, true},
			{"--cred token", nil, append([]string{"--cred=" + token}, run...), true},
			{"OS_TOKEN", append(noPassword, "OS_TOKEN="+token), run, true},
			{"--cred-file", nil, append([]string{"--cred-file", tokenFile(t, token, 0o600)}, run...), true},
			{"clouds.yaml", append(noPassword, "OS_CLOUD=tenant-a", "OS_CLIENT_CONFIG_FILE="+s.CloudsFile()), run, true},
			{"application credential", append(noPassword, "OS_PROJECT_NAME=", "OS_APPLICATION_CREDENTIAL_ID="+ac.ID,
				"OS_APPLICATION_CREDENTIAL_SECRET="+acSecret), run, true},
			{"invalid --cred token", nil, append([]string{"--cred=" + badToken}, run...), false},
			{"invalid OS_TOKEN", append(noPassword, "OS_TOKEN="+badToken), run, false},
			{"wrong password", []string{"OS_PASSWORD=" + badToken}, run, false},
			{"wrong application credential secret", append(noPassword, "OS_PROJECT_NAME=", "OS_APPLICATION_CREDENTIAL_ID="+ac.ID,
				"OS_APPLICATION_CREDENTIAL_SECRET="+badToken), run, false},
			{"--cred-file readable by others", nil, append([]string{"--cred-file", tokenFile(t, token, 0o644)}, run...), false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ovnDocker(t, vm, tc.env, tc.args...)
				outputs = append(outputs, r.stdout+r.stderr)
				if (r.code == 0) != tc.ok {
					t.Fatalf("want success %v: %s", tc.ok, r)
				}
				if tc.ok && (!strings.Contains(r.stderr, "level=DEBUG") || !strings.Contains(r.stdout, "hello")) {
					t.Fatalf("no debug log or no container output: the check would see nothing: %s", r)
				}
				noSecret(t, "the output", r.stdout+r.stderr, secrets...)
				if !tc.ok {
					t.Log(strings.TrimSpace(r.stderr))
				}
			})
		}
	})

	// The tokens ovn-docker got itself with a password or an application credential, as
	// its cache in the state directory keeps them: in no output either.
	t.Run("cached tokens", func(t *testing.T) {
		files, _ := filepath.Glob(filepath.Join(vm.Env["OVN_DOCKER_STATE_DIR"], "tokens", "*.json"))
		if len(files) == 0 {
			t.Log("no token cache in the state directory")
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				Token string `json:"token"`
			}
			if err := json.Unmarshal(b, &c); err != nil || c.Token == "" {
				t.Fatalf("%s: no token in it: %v", f, err)
			}
			for _, out := range outputs {
				noSecret(t, "the output", out, c.Token)
			}
		}
	})

	t.Run("cred-file", func(t *testing.T) {
		other := tokenFile(t, token, 0o600)
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			args []string
			want string // "" for success
		}{
			{"mode 0600", []string{"--cred-file", tokenFile(t, token, 0o600)}, ""},
			{"mode 0400", []string{"--cred-file", tokenFile(t, token, 0o400)}, ""},
			{"mode 0644", []string{"--cred-file", tokenFile(t, token, 0o644)}, "has mode 0644"},
			{"mode 0640", []string{"--cred-file", tokenFile(t, token, 0o640)}, "has mode 0640"},
			{"mode 0660", []string{"--cred-file", tokenFile(t, token, 0o660)}, "has mode 0660"},
			{"another owner", []string{"--cred-file", other}, "belongs to uid 65534"},
			{"with --cred", []string{"--cred", token, "--cred-file", tokenFile(t, token, 0o600)}, "not both"},
			{"missing", []string{"--cred-file", filepath.Join(t.TempDir(), "none")}, "no such file"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// No OS_PASSWORD: only the file can authenticate.
				r := ovnDocker(t, vm, noPassword, append(tc.args, "list", "networks")...)
				noSecret(t, "the output", r.stdout+r.stderr, secrets...)
				if tc.want == "" {
					if r.code != 0 || !strings.Contains(r.stdout, ls) {
						t.Fatalf("want the networks listed: %s", r)
					}
					return
				}
				last := strings.TrimSpace(r.stderr)
				if r.code == 0 || strings.Contains(last, "\n") || !strings.Contains(last, tc.want) {
					t.Fatalf("want one line saying %q: %s", tc.want, r)
				}
			})
		}
	})

	// A running container for the rest.
	runBox(t, vm, "sec-kept", []string{"--cred=" + token, "--network", ls}, nil)
	sandbox := "sec-kept-ovn-sandbox"

	t.Run("files", func(t *testing.T) {
		dir := vm.Env["OVN_DOCKER_STATE_DIR"]
		var files int
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			st := info.Sys().(*syscall.Stat_t)
			if info.Mode().Perm()&0o077 != 0 || st.Uid != 0 {
				t.Errorf("%s: mode %v owner %d: others may read or change it", p, info.Mode(), st.Uid)
			}
			if d.Type().IsRegular() {
				files++
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				noSecret(t, p, string(b), secrets...)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if files == 0 {
			t.Fatalf("no state file in %s: nothing was checked", dir)
		}
		locks, _ := filepath.Glob("/run/lock/ovn-docker-pause-*.lock")
		for _, p := range locks {
			if info, err := os.Stat(p); err == nil && info.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: mode %v", p, info.Mode())
			}
		}
		// A plugin's sockets, once a daemon serves Docker: only root may talk to them.
		for _, d := range []string{vm.Env["STACK_VM_PLUGIN_DIR"], vm.Env["STACK_VM_SPEC_DIR"], "/run/docker/plugins"} {
			entries, _ := os.ReadDir(d)
			for _, e := range entries {
				if e.Type()&fs.ModeSocket == 0 {
					continue
				}
				info, err := e.Info()
				if err == nil && info.Mode().Perm()&0o007 != 0 {
					t.Errorf("plugin socket %s: mode %v: any user of the VM may use it", filepath.Join(d, e.Name()), info.Mode())
				}
			}
		}
	})

	t.Run("docker and neutron records", func(t *testing.T) {
		for _, c := range []string{"sec-kept", sandbox} {
			out, err := dockerIn(vm, "inspect", c)
			if err != nil {
				t.Fatalf("docker inspect %s: %v\n%s", c, err, out)
			}
			noSecret(t, "docker inspect "+c, out, secrets...)
		}
		e := entryOf(t, vm, "sec-kept", "eth0")
		res := ports.Get(ctx, s.Network(t, "admin"), e.Port)
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		b, _ := json.Marshal(res.Body)
		if !strings.Contains(string(b), e.Port) {
			t.Fatalf("the port's record does not hold its ID: %s", b)
		}
		noSecret(t, "the Neutron port", string(b), secrets...)
		// The command line of every process of the VM's containers.
		out, _ := dockerIn(vm, "top", sandbox)
		noSecret(t, "the sandbox's processes", out, secrets...)
	})

	t.Run("no listener", func(t *testing.T) {
		// In the foreground, with --rm: ovn-docker stays until the container ends.
		fctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		fg := vm.Command(fctx, bin, "--network", ls, "run", "--rm", "--name", "sec-fg", "busybox:local", "sleep", "10")
		var fgOut strings.Builder
		fg.Stdout, fg.Stderr = &fgOut, &fgOut
		if err := fg.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- fg.Wait() }()
		var sbPid int
		waitUntil(t, "sec-fg and its sandbox run", func() (bool, string) {
			out, err := dockerIn(vm, "inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "sec-fg", "sec-fg-ovn-sandbox")
			if f := strings.Fields(out); err == nil && len(f) == 4 && f[0] == "true" && f[2] == "true" {
				sbPid, _ = strconv.Atoi(f[3])
			}
			return sbPid != 0, fmt.Sprintf("%v %s", err, out)
		})
		// Both ovn-docker processes are alive now: the foreground run, and the pause
		// process holding the sandbox's namespace.
		if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(fg.Process.Pid) + "/comm"); strings.TrimSpace(string(comm)) != "ovn-docker" {
			t.Fatalf("the foreground run's process is %q, not ovn-docker: nothing to check", comm)
		}
		if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(sbPid) + "/comm"); strings.TrimSpace(string(comm)) != "ovn-docker" {
			t.Fatalf("the sandbox's process is %q, not ovn-docker's pause", comm)
		}
		inVM := testutil.MustRun(t, "ip", "netns", "exec", vm.Name, "ss", "-H", "-l", "-t", "-u", "-n", "-p")
		if !strings.Contains(inVM, ":5000") {
			t.Fatalf("ss in %s does not show the stack's relay on :5000: it would not show ours either:\n%s", vm.Name, inVM)
		}
		inSandbox := testutil.MustRun(t, "nsenter", "-t", strconv.Itoa(sbPid), "-n", "ss", "-H", "-l", "-t", "-u", "-n", "-p")
		for where, out := range map[string]string{vm.Name: inVM, "the sandbox": inSandbox} {
			if strings.Contains(out, "ovn-docker") {
				t.Errorf("ovn-docker listens in %s:\n%s", where, out)
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("foreground run: %v\n%s", err, fgOut.String())
		}
	})
}

func ptrTime(t time.Time) *time.Time { return &t }
