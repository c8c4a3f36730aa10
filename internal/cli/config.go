package cli

// The configuration file: what a packaged agent and the VM's operators share, so that
// the unit, root's shell and cloud-init need not repeat the same flags. It holds the
// same settings as the flags and variables, under either name (bridge = br0, or
// OVN_DOCKER_BRIDGE=br0), and the first one given wins: flag, then variable, then file.
// It never holds a secret: credentials stay in clouds.yaml or a --cred-file, both of
// which the OpenStack tools already protect, so the file may stay world-readable.

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// DefaultConfigFile is read when it exists; --config or OVN_DOCKER_CONFIG name another.
const DefaultConfigFile = "/etc/ovn-docker/ovn-docker.conf"

// configKeys maps each key the file may hold, by its flag's name, to its variable.
var configKeys = map[string]string{
	"vif-id":          "OVN_DOCKER_VIF_ID",
	"uplink":          "OVN_DOCKER_UPLINK",
	"ovsdb":           "OVN_DOCKER_OVSDB",
	"bridge":          "OVN_DOCKER_BRIDGE",
	"ovs-rundir":      "OVN_DOCKER_OVS_RUNDIR",
	"state-dir":       "OVN_DOCKER_STATE_DIR",
	"mode":            "OVN_DOCKER_MODE",
	"log-level":       "OVN_DOCKER_LOG_LEVEL",
	"log-format":      "OVN_DOCKER_LOG_FORMAT",
	"standalone":      "OVN_DOCKER_STANDALONE",
	"api-timeout":     "OVN_DOCKER_API_TIMEOUT",
	"api-concurrency": "OVN_DOCKER_API_CONCURRENCY",
	"plugin-dir":      "OVN_DOCKER_PLUGIN_DIR",
	"plugin-name":     "OVN_DOCKER_PLUGIN_NAME",
	"metrics":         "OVN_DOCKER_METRICS",
	"pool":            "OVN_DOCKER_POOLS",
	"os-cloud":        "OS_CLOUD",
	"os-region-name":  "OS_REGION_NAME",
}

// secretKeys are refused in the file, with where they belong instead.
var secretKeys = map[string]bool{
	"cred": true, "os-token": true, "os-password": true, "os-application-credential-secret": true,
}

// configPath is the file to read: --config (scanned before the flags are parsed,
// since the file gives the flags their defaults), else OVN_DOCKER_CONFIG, else the
// default. explicit says the user named it, so that a missing file is an error.
func configPath(args []string, getenv func(string) string) (path string, explicit bool) {
	for i := 0; i < len(args); i++ {
		w := args[i]
		if w == "--" || w == "run" {
			break // run's own arguments are Docker's
		}
		if v, ok := strings.CutPrefix(w, "--config="); ok {
			return v, true
		}
		if w == "--config" && i+1 < len(args) {
			return args[i+1], true
		}
	}
	if p := getenv("OVN_DOCKER_CONFIG"); p != "" {
		return p, true
	}
	return DefaultConfigFile, false
}

// loadConfig reads the file at path into its variables' values.
func loadConfig(path string, explicit bool) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o002 != 0 {
		return nil, fmt.Errorf("config %s: writable by every user (mode %04o); chmod o-w it", path, st.Mode().Perm())
	}
	return parseConfig(path, f)
}

// parseConfig reads "key = value" lines (or KEY=value, as a systemd EnvironmentFile
// has them); # starts a comment line; quotes around a value are taken off.
func parseConfig(path string, f interface{ Read([]byte) (int, error) }) (map[string]string, error) {
	byVar := map[string]string{}
	for _, v := range configKeys {
		byVar[v] = v
	}
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("config %s:%d: want KEY = VALUE, got %q", path, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		flagName := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "OVN_DOCKER_"), "_", "-"))
		if secretKeys[flagName] || secretKeys["os-"+flagName] || strings.HasSuffix(flagName, "secret") {
			return nil, fmt.Errorf("config %s:%d: %s is a secret and does not belong here: use clouds.yaml (os-cloud = NAME) or --cred-file", path, n, k)
		}
		name, ok := configKeys[k]
		if !ok {
			name, ok = byVar[k]
		}
		if !ok {
			return nil, fmt.Errorf("config %s:%d: unknown setting %q (see ovn-docker --help)", path, n, k)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("config %s:%d: %s given twice", path, n, k)
		}
		out[name] = v
	}
	return out, sc.Err()
}

// withConfig is getenv, falling back on the file's values: a variable that is set,
// even to a value the file also gives, wins.
func withConfig(getenv func(string) string, file map[string]string) func(string) string {
	if len(file) == 0 {
		return getenv
	}
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return file[k]
	}
}
