//go:build integration

package runargs

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// recorder is a minimal Engine API endpoint: it answers the docker CLI's
// ping and records the container create request, then fails it so that the
// CLI stops there.
type recorder struct {
	mu     sync.Mutex
	body   []byte
	name   string
	others []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch {
	case strings.HasSuffix(req.URL.Path, "/_ping"):
		w.Header().Set("API-Version", "1.47")
		w.Header().Set("OSType", "linux")
		_, _ = io.WriteString(w, "OK")
	case strings.HasSuffix(req.URL.Path, "/containers/create"):
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.body, r.name = b, req.URL.Query().Get("name")
		r.mu.Unlock()
		// 500 rather than 404: a 404 would make the CLI try to pull.
		http.Error(w, `{"message":"recorded"}`, http.StatusInternalServerError)
	default:
		r.mu.Lock()
		r.others = append(r.others, req.Method+" "+req.URL.Path)
		r.mu.Unlock()
		http.Error(w, `{"message":"unexpected"}`, http.StatusInternalServerError)
	}
}

// dockerCreateRequest runs the real docker CLI against a recorder and
// returns the create request it sent and the ?name= it asked for.
func dockerCreateRequest(t *testing.T, dockerBin string, env []string, args []string) (container.CreateRequest, string) {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	cmd := exec.Command(dockerBin, append([]string{"run"}, args...)...)
	cmd.Env = append([]string{
		"DOCKER_HOST=unix://" + sock,
		"DOCKER_CONFIG=" + filepath.Join(dir, "config"),
		"HOME=" + dir,
		"PATH=" + os.Getenv("PATH"),
	}, env...)
	out, _ := cmd.CombinedOutput() // the recorder makes it fail on purpose

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.body == nil {
		t.Fatalf("docker run %q sent no create request (other requests %q); output:\n%s", args, rec.others, out)
	}
	var req container.CreateRequest
	if err := json.Unmarshal(rec.body, &req); err != nil {
		t.Fatalf("decode create request %s: %v", rec.body, err)
	}
	return req, rec.name
}

// asDockerSends folds Options back into the single request docker builds,
// where the network namespace settings are not kept apart, and passes it
// through JSON so that only wire-visible differences count.
func asDockerSends(t *testing.T, o *Options) container.CreateRequest {
	t.Helper()
	cfg := *o.Config
	hc := *o.HostConfig
	cfg.Hostname, cfg.Domainname = o.Hostname, o.Domainname
	hc.DNS, hc.DNSSearch, hc.DNSOptions = orEmpty(o.DNS), orEmpty(o.DNSSearch), orEmpty(o.DNSOptions)
	hc.ExtraHosts = o.ExtraHosts
	hc.NetworkMode = container.NetworkMode(o.Network)
	if o.Network == "" {
		hc.NetworkMode = "default"
	}
	if len(o.NetworkSysctls) > 0 {
		hc.Sysctls = map[string]string{}
		for k, v := range o.HostConfig.Sysctls {
			hc.Sysctls[k] = v
		}
		for k, v := range o.NetworkSysctls {
			hc.Sysctls[k] = v
		}
	}
	b, err := json.Marshal(container.CreateRequest{Config: &cfg, HostConfig: &hc})
	if err != nil {
		t.Fatal(err)
	}
	var req container.CreateRequest
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	return req
}

// jsonDiff lists the fields, HostConfig ones included, whose JSON differs.
func jsonDiff(t *testing.T, got, want container.CreateRequest) string {
	t.Helper()
	flat := func(r container.CreateRequest) map[string]string {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for k, v := range m {
			out[k] = string(v)
		}
		var hc map[string]json.RawMessage
		if err := json.Unmarshal(m["HostConfig"], &hc); err != nil {
			t.Fatal(err)
		}
		delete(out, "HostConfig")
		for k, v := range hc {
			out["HostConfig."+k] = string(v)
		}
		return out
	}
	g, w := flat(got), flat(want)
	var lines []string
	for k := range w {
		if _, ok := g[k]; !ok {
			g[k] = "(absent)"
		}
	}
	for k, gv := range g {
		wv, ok := w[k]
		if !ok {
			wv = "(absent)"
		}
		if gv != wv {
			lines = append(lines, fmt.Sprintf("  %s: ours %s, docker %s", k, gv, wv))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// normalizeOrder sorts what the docker CLI builds by iterating Go maps, so
// that its order is not part of the comparison.
func normalizeOrder(r *container.CreateRequest) {
	slices.Sort(r.Config.Env)
	slices.Sort(r.HostConfig.Binds)
	r.NetworkingConfig = nil
}

// TestMatchesDockerCLI runs the real docker CLI and Parse on the same
// arguments and checks that they build the same create request.
func TestMatchesDockerCLI(t *testing.T) {
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Fatalf("docker CLI not found: %v", err)
	}
	dir := fixtures(t)
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"B": "bee", "Y": "why"}
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	cases := [][]string{
		{"-d", "--net=none", "busybox", "sleep", "1000"},
		{"busybox"},
		{"-i", "busybox", "sh"},
		{"-dit", "busybox"},
		{"busybox", "-d", "--rm", "ls", "-l"},
		{"-d", "--", "busybox", "--version"},
		{"--name=web", "--rm", "busybox"},
		{"-e", "A=1", "-e", "B", "--env", "C", "-e", "A=2", "-eD=", "-e=E=x", "busybox"},
		{"--env-file", "$DIR/app.env", "-e", "X=override", "--env-file=$DIR/bom.env", "busybox"},
		{"-l", "a=1", "-l", "b", "--label", "c=x=y", "--label-file", "$DIR/labels", "busybox"},
		{"-v", "/host:/ctr", "-v", "/data", "-v", "named:/n:ro", "--volume", "./rel:/rel:rw,z", "-v", "/host:/ctr", "-v", "vol:/nc:nocopy", "busybox"},
		{"--mount", "type=bind,source=/src,target=/dst,readonly", "--mount", "type=volume,src=vol,dst=/v,volume-nocopy",
			"--mount", "Type=TMPFS,destination=/t,tmpfs-size=64m,tmpfs-mode=1777", "--mount", "target=/anon",
			"--mount", "type=bind,src=./x,dst=/x,ro=false,bind-propagation=rshared", "busybox"},
		{"--tmpfs", "/run", "--tmpfs", "/tmp:rw,noexec,size=64m", "busybox"},
		{"-w", "/app", "-u", "1000:1000", "--entrypoint", "/bin/sh", "busybox", "-c", "echo hi"},
		{"--entrypoint", "", "busybox"},
		{"-h", "web", "--domainname", "example.org", "--dns", "8.8.8.8", "--dns", " 2001:0db8::1 ",
			"--dns-search", "example.com.", "--dns-search", ".", "--dns-option", "ndots:2", "--dns-opt", "timeout:1",
			"--add-host", "db:10.0.0.5", "--add-host", "v6=[::1]", "--add-host", "gw:host-gateway", "busybox"},
		{"--restart=on-failure:3", "busybox"},
		{"--restart", "unless-stopped", "busybox"},
		{"--restart=no", "--rm", "busybox"},
		{"--restart=", "--platform=", "busybox"},
		{"--privileged", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
			"--security-opt", "apparmor=unconfined", "--security-opt", "label:disable",
			"--security-opt", "seccomp=$DIR/seccomp.json", "--security-opt", "systempaths=unconfined", "--read-only", "busybox"},
		{"--cap-add", "sys_time", "--cap-add", "net_admin", "--cap-add", "CAP_NET_ADMIN", "--cap-drop", "chown",
			"--cap-drop", "NET_ADMIN", "--cap-drop", "Cap_Mknod", "busybox"},
		{"--cap-add", "ALL", "--cap-add", "NET_ADMIN", "--cap-drop", "all", "busybox"},
		{"--cap-drop", "ALL", "--cap-drop", "chown", "busybox"},
		{"-m", "512m", "--memory-swap", "1g", "--cpus", "1.5", "-c", "512", "--pids-limit", "100",
			"--ulimit", "nofile=1024:2048", "--ulimit", "nproc=512", "--ulimit", "nofile=4096", "--shm-size", "64m", "busybox"},
		{"--memory=1g", "--memory-swap", "-1", "--pids-limit", "-1", "--cpus=.25", "busybox"},
		{"--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=1000", "busybox"},
		{"--init", "--stop-signal", "SIGUSR1", "--stop-timeout", "30", "busybox"},
		{"--init=false", "--stop-timeout=0", "busybox"},
		{"--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3", "busybox"},
		{"--network", "ls1", "--pull", "never", "busybox"},
	}
	for _, c := range cases {
		args := expand(c, dir)
		t.Run(strings.Join(c, " "), func(t *testing.T) {
			o, err := ParseWithEnv(args, lookup)
			if err != nil {
				t.Fatalf("ParseWithEnv(%q): %v", args, err)
			}
			got := asDockerSends(t, o)
			want, name := dockerCreateRequest(t, dockerBin, envList, args)
			normalizeOrder(&got)
			normalizeOrder(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("request differs from docker's (cwd %s):\n%s", cwd, jsonDiff(t, got, want))
			}
			if o.Name != name {
				t.Errorf("Name = %q, docker asked for %q", o.Name, name)
			}
		})
	}
}
