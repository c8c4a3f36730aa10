package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeConf(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ovn-docker.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// helpDefaults runs `ovn-docker daemon --help` and returns its output: the flags'
// defaults show what the file and the variables gave.
func helpDefaults(t *testing.T, args []string, env map[string]string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, nil, &out, &errb, func(k string) string { return env[k] })
	return out.String(), errb.String(), code
}

// TestConfigPrecedence: flag > variable > file, for a root flag and a daemon flag,
// under either spelling of the key.
func TestConfigPrecedence(t *testing.T) {
	p := writeConf(t, "# the VM's settings\nbridge = br-file\nOVN_DOCKER_UPLINK=ens3\npool = LS1:2:4 LS2\nos-cloud = \"mycloud\"\n", 0o644)
	out, errs, code := helpDefaults(t, []string{"--config", p, "daemon", "--help"}, nil)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{`(default "br-file")`, `(default "ens3")`, `(default [LS1:2:4,LS2])`} {
		if !strings.Contains(out, want) {
			t.Errorf("file: no %s in\n%s", want, out)
		}
	}
	// The variable wins over the file.
	out, _, _ = helpDefaults(t, []string{"daemon", "--help"}, map[string]string{"OVN_DOCKER_CONFIG": p, "OVN_DOCKER_BRIDGE": "br-env"})
	if !strings.Contains(out, `(default "br-env")`) || !strings.Contains(out, `(default "ens3")`) {
		t.Errorf("variable over file:\n%s", out)
	}
	// The file reaches what reads variables (the credentials' cloud).
	file, err := loadConfig(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if get := withConfig(func(string) string { return "" }, file); get("OS_CLOUD") != "mycloud" {
		t.Errorf("OS_CLOUD from os-cloud: %q", get("OS_CLOUD"))
	}
}

func TestConfigRefusals(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"bridge br0\n", `:1: want KEY = VALUE, got "bridge br0"`},
		{"# x\nbrige = br0\n", `:2: unknown setting "brige" (see ovn-docker --help)`},
		{"OS_PASSWORD = hunter2\n", `:1: OS_PASSWORD is a secret and does not belong here: use clouds.yaml`},
		{"cred = gAAAA\n", `:1: cred is a secret`},
		{"bridge = a\nOVN_DOCKER_BRIDGE = b\n", `:2: OVN_DOCKER_BRIDGE given twice`},
	} {
		p := writeConf(t, c.body, 0o600)
		_, errs, code := helpDefaults(t, []string{"--config=" + p, "ps"}, nil)
		if code != 1 || !strings.Contains(errs, c.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("%q: exit %d, %q; want one line with %q", c.body, code, errs, c.want)
		}
		if strings.Contains(errs, "hunter2") || strings.Contains(errs, "gAAAA") {
			t.Errorf("secret in the error: %s", errs)
		}
	}
	p := writeConf(t, "bridge = br0\n", 0o666)
	if _, errs, code := helpDefaults(t, []string{"ps"}, map[string]string{"OVN_DOCKER_CONFIG": p}); code != 1 || !strings.Contains(errs, "writable by every user (mode 0666); chmod o-w it") {
		t.Errorf("world-writable: exit %d, %s", code, errs)
	}
	// A file named but missing is an error; the default file missing is not.
	missing := filepath.Join(t.TempDir(), "nope.conf")
	if _, errs, code := helpDefaults(t, []string{"--config", missing, "version"}, nil); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing --config: exit %d, %s", code, errs)
	}
	if f, err := loadConfig(missing, false); err != nil || f != nil {
		t.Errorf("missing default: %v %v", f, err)
	}
}

// TestConfigNotReadPastRun: run's own arguments are Docker's, even one spelled --config.
func TestConfigNotReadPastRun(t *testing.T) {
	if p, explicit := configPath([]string{"--network", "LS1", "run", "--config", "/x"}, func(string) string { return "" }); p != DefaultConfigFile || explicit {
		t.Fatalf("got %s %v", p, explicit)
	}
}
