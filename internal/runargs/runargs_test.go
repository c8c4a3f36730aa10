package runargs

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/blkiodev"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/go-connections/nat"
)

// fixtures writes the files some cases read and returns their directory.
func fixtures(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"app.env":      "# comment\n\n  X=1 \nY\nZ\nW=a=b\r\n",
		"badkey.env":   "OK=1\nA B=1\n",
		"nokey.env":    "=x\n",
		"bom.env":      "\uFEFFBOM=1\n",
		"labels":       "a=file\nd\n",
		"seccomp.json": "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n",
		"notjson":      "not json",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func expand(args []string, dir string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "$DIR", dir)
	}
	return out
}

// dockerDefaults is what `docker run IMAGE CMD...` sends with no options:
// the fields the docker CLI always fills, even when empty.
func dockerDefaults(image string, cmd ...string) *Options {
	swappiness := int64(-1)
	oomKillDisable := false
	pids := int64(0)
	var c strslice.StrSlice
	if len(cmd) > 0 {
		c = cmd
	}
	return &Options{
		Pull: "missing",
		Config: &container.Config{
			AttachStdout: true,
			AttachStderr: true,
			Image:        image,
			Cmd:          c,
			Volumes:      map[string]struct{}{},
			Labels:       map[string]string{},
		},
		HostConfig: &container.HostConfig{
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
			PortBindings:  nat.PortMap{},
			LogConfig:     container.LogConfig{Config: map[string]string{}},
			Tmpfs:         map[string]string{},
			Sysctls:       map[string]string{},
			Resources: container.Resources{
				MemorySwappiness:     &swappiness,
				OomKillDisable:       &oomKillDisable,
				PidsLimit:            &pids,
				Ulimits:              []*container.Ulimit{},
				Devices:              []container.DeviceMapping{},
				BlkioWeightDevice:    []*blkiodev.WeightDevice{},
				BlkioDeviceReadBps:   []*blkiodev.ThrottleDevice{},
				BlkioDeviceWriteBps:  []*blkiodev.ThrottleDevice{},
				BlkioDeviceReadIOps:  []*blkiodev.ThrottleDevice{},
				BlkioDeviceWriteIOps: []*blkiodev.ThrottleDevice{},
			},
		},
	}
}

func detached(o *Options) {
	o.Detach = true
	o.Config.AttachStdout, o.Config.AttachStderr = false, false
}

func ptr[T any](v T) *T { return &v }

func TestParseValid(t *testing.T) {
	dir := fixtures(t)
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"B": "bee", "Y": "why"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	cases := []struct {
		name  string
		args  []string
		image string   // default busybox
		cmd   []string // the command docker would send
		want  func(o *Options)
	}{
		{
			name: "spec command",
			args: []string{"-d", "--net=none", "busybox", "sleep", "1000"},
			cmd:  []string{"sleep", "1000"},
			want: func(o *Options) { detached(o); o.Network = "none" },
		},
		{name: "attached by default", args: []string{"busybox"}},
		{
			name: "interactive tty attached",
			args: []string{"-it", "busybox", "sh"},
			cmd:  []string{"sh"},
			want: func(o *Options) {
				o.Interactive, o.TTY = true, true
				o.Config.Tty, o.Config.OpenStdin, o.Config.AttachStdin, o.Config.StdinOnce = true, true, true, true
			},
		},
		{
			name: "combined short flags detached",
			args: []string{"-dit", "busybox"},
			want: func(o *Options) {
				detached(o)
				o.Interactive, o.TTY = true, true
				o.Config.Tty, o.Config.OpenStdin = true, true
			},
		},
		{
			name: "options after the image belong to the command",
			args: []string{"busybox", "-d", "--rm", "ls", "-l"},
			cmd:  []string{"-d", "--rm", "ls", "-l"},
		},
		{
			name: "double dash ends the options",
			args: []string{"-d", "--", "busybox", "--version"},
			cmd:  []string{"--version"},
			want: detached,
		},
		{
			name: "double dash after the image is part of the command",
			args: []string{"busybox", "--", "echo"},
			cmd:  []string{"--", "echo"},
		},
		{
			name: "name and rm, both spellings",
			args: []string{"--name=web", "--rm", "busybox"},
			want: func(o *Options) { o.Name, o.Remove, o.HostConfig.AutoRemove = "web", true, true },
		},
		{
			name: "name with separate value",
			args: []string{"--name", "db.1_a-b", "busybox"},
			want: func(o *Options) { o.Name = "db.1_a-b" },
		},
		{
			name: "explicit booleans",
			args: []string{"--rm=false", "--privileged=true", "-d=true", "busybox"},
			want: func(o *Options) { detached(o); o.HostConfig.Privileged = true },
		},
		{
			name: "env from flags, environment and repeats",
			args: []string{"-e", "A=1", "-e", "B", "--env", "C", "-e", "A=2", "-eD=", "-e=E=x", "busybox"},
			want: func(o *Options) { o.Config.Env = []string{"A=2", "B=bee", "C", "D=", "E=x"} },
		},
		{
			name: "env file first, flags override",
			args: []string{"--env-file", "$DIR/app.env", "-e", "X=override", "--env-file=$DIR/bom.env", "busybox"},
			want: func(o *Options) {
				o.Config.Env = []string{"X=1 ", "Y=why", "W=a=b", "BOM=1", "X=override"}
			},
		},
		{
			name: "labels from flags and file",
			args: []string{"-l", "a=1", "-l", "b", "--label", "c=x=y", "--label-file", "$DIR/labels", "busybox"},
			want: func(o *Options) { o.Config.Labels = map[string]string{"a": "1", "b": "", "c": "x=y"} },
		},
		{
			name: "volumes: binds, named, anonymous, relative, repeated",
			args: []string{
				"-v", "/host:/ctr", "-v", "/data", "-v", "named:/n:ro", "--volume", "./rel:/rel:rw,z",
				"-v", "/host:/ctr", "-v", "/s:/s:ro,rslave,consistent", "-v", "vol:/nc:nocopy", "busybox",
			},
			want: func(o *Options) {
				o.HostConfig.Binds = []string{
					"/host:/ctr", "named:/n:ro", filepath.Join(cwd, "rel") + ":/rel:rw,z",
					"/s:/s:ro,rslave,consistent", "vol:/nc:nocopy",
				}
				o.Config.Volumes = map[string]struct{}{"/data": {}}
			},
		},
		{
			name: "mounts",
			args: []string{
				"--mount", "type=bind,source=/src,target=/dst,readonly",
				"--mount", "type=volume,src=vol,dst=/v,volume-nocopy",
				"--mount", "Type=TMPFS,destination=/t,tmpfs-size=64m,tmpfs-mode=1777",
				"--mount", "target=/anon",
				"--mount", "type=bind,src=./x,dst=/x,ro=false,bind-propagation=rshared",
				"busybox",
			},
			want: func(o *Options) {
				o.HostConfig.Mounts = []mount.Mount{
					{Type: mount.TypeBind, Source: "/src", Target: "/dst", ReadOnly: true},
					{Type: mount.TypeVolume, Source: "vol", Target: "/v", VolumeOptions: &mount.VolumeOptions{
						NoCopy: true, Labels: map[string]string{}, DriverConfig: &mount.Driver{},
					}},
					{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1777}},
					{Type: mount.TypeVolume, Target: "/anon"},
					{Type: mount.TypeBind, Source: filepath.Join(cwd, "x"), Target: "/x", BindOptions: &mount.BindOptions{Propagation: mount.PropagationRShared}},
				}
			},
		},
		{
			name: "tmpfs",
			args: []string{"--tmpfs", "/run", "--tmpfs", "/tmp:rw,noexec,size=64m,mode=1777", "busybox"},
			want: func(o *Options) {
				o.HostConfig.Tmpfs = map[string]string{"/run": "", "/tmp": "rw,noexec,size=64m,mode=1777"}
			},
		},
		{
			name: "workdir, user, entrypoint",
			args: []string{"-w", "/app", "-u", "1000:1000", "--entrypoint", "/bin/sh", "busybox", "-c", "echo hi"},
			cmd:  []string{"-c", "echo hi"},
			want: func(o *Options) {
				o.Config.WorkingDir, o.Config.User = "/app", "1000:1000"
				o.Config.Entrypoint = strslice.StrSlice{"/bin/sh"}
			},
		},
		{
			name: "empty entrypoint resets it",
			args: []string{"--entrypoint", "", "busybox"},
			want: func(o *Options) { o.Config.Entrypoint = strslice.StrSlice{""} },
		},
		{
			name: "empty entrypoint, equals form",
			args: []string{"--entrypoint=", "busybox"},
			want: func(o *Options) { o.Config.Entrypoint = strslice.StrSlice{""} },
		},
		{
			name: "network namespace settings are kept apart",
			args: []string{
				"-h", "web", "--domainname", "example.org",
				"--dns", "8.8.8.8", "--dns", " 2001:0db8::1 ",
				"--dns-search", "example.com.", "--dns-search", ".",
				"--dns-option", "ndots:2", "--dns-opt", "timeout:1",
				"--add-host", "db:10.0.0.5", "--add-host", "v6=[::1]", "--add-host", "gw:host-gateway", "--add-host", "six:::1",
				"busybox",
			},
			want: func(o *Options) {
				o.Hostname, o.Domainname = "web", "example.org"
				o.DNS = []string{"8.8.8.8", "2001:db8::1"}
				o.DNSSearch = []string{"example.com", "."}
				o.DNSOptions = []string{"ndots:2", "timeout:1"}
				o.ExtraHosts = []string{"db:10.0.0.5", "v6:::1", "gw:host-gateway", "six:::1"}
			},
		},
		{
			name: "restart always",
			args: []string{"--restart", "always", "busybox"},
			want: func(o *Options) { o.HostConfig.RestartPolicy = container.RestartPolicy{Name: "always"} },
		},
		{
			name: "restart on-failure with count",
			args: []string{"--restart=on-failure:3", "busybox"},
			want: func(o *Options) {
				o.HostConfig.RestartPolicy = container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}
			},
		},
		{
			name: "restart unless-stopped",
			args: []string{"--restart", "unless-stopped", "busybox"},
			want: func(o *Options) { o.HostConfig.RestartPolicy = container.RestartPolicy{Name: "unless-stopped"} },
		},
		{
			name: "restart no goes with rm",
			args: []string{"--restart=no", "--rm", "busybox"},
			want: func(o *Options) { o.Remove, o.HostConfig.AutoRemove = true, true },
		},
		{
			name: "security",
			args: []string{
				"--privileged", "--cap-add", "NET_ADMIN", "--cap-add", "cap_sys_time", "--cap-add", "Net_Admin",
				"--cap-drop", "all", "--cap-drop", "Mknod",
				"--security-opt", "no-new-privileges", "--security-opt", "apparmor=unconfined",
				"--security-opt", "label:disable", "--security-opt", "seccomp=$DIR/seccomp.json",
				"--security-opt", "systempaths=unconfined", "--security-opt", "seccomp=unconfined",
				"--read-only", "busybox",
			},
			want: func(o *Options) {
				hc := o.HostConfig
				hc.Privileged, hc.ReadonlyRootfs = true, true
				hc.CapAdd = strslice.StrSlice{"CAP_NET_ADMIN", "CAP_SYS_TIME"}
				hc.CapDrop = strslice.StrSlice{"ALL", "CAP_MKNOD"}
				hc.SecurityOpt = []string{
					"no-new-privileges", "apparmor=unconfined", "label:disable",
					`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`, "seccomp=unconfined",
				}
				hc.MaskedPaths, hc.ReadonlyPaths = []string{}, []string{}
			},
		},
		{
			name: "resources",
			args: []string{
				"-m", "512m", "--memory-swap", "1g", "--cpus", "1.5", "-c", "512", "--pids-limit", "100",
				"--ulimit", "nofile=1024:2048", "--ulimit", "nproc=512", "--ulimit", "nofile=4096", "--shm-size", "64m",
				"busybox",
			},
			want: func(o *Options) {
				r := &o.HostConfig.Resources
				r.Memory, r.MemorySwap, r.NanoCPUs, r.CPUShares = 512<<20, 1<<30, 1500000000, 512
				r.PidsLimit = ptr(int64(100))
				r.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 4096, Hard: 4096}, {Name: "nproc", Soft: 512, Hard: 512}}
				o.HostConfig.ShmSize = 64 << 20
			},
		},
		{
			name: "unlimited swap and pids",
			args: []string{"--memory=1g", "--memory-swap", "-1", "--pids-limit", "-1", "--cpus=.25", "busybox"},
			want: func(o *Options) {
				r := &o.HostConfig.Resources
				r.Memory, r.MemorySwap, r.NanoCPUs = 1<<30, -1, 250000000
				r.PidsLimit = ptr(int64(-1))
			},
		},
		{
			name: "sysctls split by namespace owner",
			args: []string{"--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=1000", "--sysctl", "fs.mqueue.msg_max=100", "busybox"},
			want: func(o *Options) {
				o.HostConfig.Sysctls = map[string]string{"kernel.shmmax": "1000", "fs.mqueue.msg_max": "100"}
				o.NetworkSysctls = map[string]string{"net.ipv4.ip_forward": "1"}
			},
		},
		{
			name: "init and stop settings",
			args: []string{"--init", "--stop-signal", "SIGUSR1", "--stop-timeout", "30", "busybox"},
			want: func(o *Options) {
				o.HostConfig.Init = ptr(true)
				o.Config.StopSignal, o.Config.StopTimeout = "SIGUSR1", ptr(30)
			},
		},
		{
			name: "explicit zero init and stop timeout are sent",
			args: []string{"--init=false", "--stop-timeout=0", "busybox"},
			want: func(o *Options) { o.HostConfig.Init, o.Config.StopTimeout = ptr(false), ptr(0) },
		},
		{
			name: "stop signal spellings",
			args: []string{"--stop-signal", "15", "busybox"},
			want: func(o *Options) { o.Config.StopSignal = "15" },
		},
		{
			name: "real-time stop signal",
			args: []string{"--stop-signal", "rtmin+3", "busybox"},
			want: func(o *Options) { o.Config.StopSignal = "rtmin+3" },
		},
		{
			name: "logging",
			args: []string{"--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3", "busybox"},
			want: func(o *Options) {
				o.HostConfig.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}
			},
		},
		{name: "pull always", args: []string{"--pull", "always", "busybox"}, want: func(o *Options) { o.Pull = "always" }},
		{name: "pull never", args: []string{"--pull=never", "busybox"}, want: func(o *Options) { o.Pull = "never" }},
		{name: "empty pull never pulls", args: []string{"--pull=", "busybox"}, want: func(o *Options) { o.Pull = "never" }},
		{name: "empty platform is ignored", args: []string{"--platform=", "busybox"}},
		{
			name: "empty restart is sent empty",
			args: []string{"--restart=", "--rm", "busybox"},
			want: func(o *Options) {
				o.HostConfig.RestartPolicy = container.RestartPolicy{}
				o.Remove, o.HostConfig.AutoRemove = true, true
			},
		},
		{name: "network long form", args: []string{"--network", "ls1", "busybox"}, want: func(o *Options) { o.Network = "ls1" }},
		{
			name:  "qualified image",
			args:  []string{"registry.example.com:5000/team/app:1.2", "serve"},
			image: "registry.example.com:5000/team/app:1.2",
			cmd:   []string{"serve"},
		},
		{
			name:  "image by digest",
			args:  []string{"busybox@sha256:" + strings.Repeat("a", 64)},
			image: "busybox@sha256:" + strings.Repeat("a", 64),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			image := tc.image
			if image == "" {
				image = "busybox"
			}
			want := dockerDefaults(image, tc.cmd...)
			if tc.want != nil {
				tc.want(want)
			}
			got, err := ParseWithEnv(expand(tc.args, dir), lookup)
			if err != nil {
				t.Fatalf("ParseWithEnv(%q): %v", tc.args, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseWithEnv(%q):\n got %s\nwant %s", tc.args, dump(t, got), dump(t, want))
			}
		})
	}
}

func dump(t *testing.T, o *Options) string {
	t.Helper()
	b, err := json.MarshalIndent(o, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWireFormat pins the JSON the Engine API receives for the spec's
// command, including which empty fields are null and which are {} or [].
func TestWireFormat(t *testing.T) {
	o, err := ParseWithEnv([]string{"-d", "--net=none", "busybox", "sleep", "1000"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(o.Config)
	if err != nil {
		t.Fatal(err)
	}
	const wantCfg = `{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,` +
		`"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,` +
		`"Cmd":["sleep","1000"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,` +
		`"OnBuild":null,"Labels":{}}`
	if string(cfg) != wantCfg {
		t.Errorf("config JSON\n got %s\nwant %s", cfg, wantCfg)
	}
	hc, err := json.Marshal(o.HostConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{
		`"NetworkMode":""`, `"RestartPolicy":{"Name":"no","MaximumRetryCount":0}`,
		`"LogConfig":{"Type":"","Config":{}}`, `"MemorySwappiness":-1`, `"OomKillDisable":false`,
		`"PidsLimit":0`, `"Ulimits":[]`, `"Devices":[]`, `"Dns":null`, `"ExtraHosts":null`, `"Binds":null`,
	} {
		if !strings.Contains(string(hc), frag) {
			t.Errorf("host config JSON lacks %s:\n%s", frag, hc)
		}
	}
	if strings.Contains(string(hc), `"Init"`) || strings.Contains(string(hc), `"Mounts"`) {
		t.Errorf("host config JSON sends unset Init or Mounts:\n%s", hc)
	}
}

func TestParseInvalid(t *testing.T) {
	dir := fixtures(t)
	cases := []struct {
		args []string
		want string
	}{
		{nil, `"docker run" requires an image`},
		{[]string{"-d", "--rm"}, `"docker run" requires an image`},
		{[]string{"--foo", "busybox"}, `unknown docker run option "--foo" (see ovn-docker run --help)`},
		{[]string{"--foo=bar", "busybox"}, `unknown docker run option "--foo" (see ovn-docker run --help)`},
		{[]string{"-x", "busybox"}, `unknown docker run option "-x" (see ovn-docker run --help)`},
		{[]string{"-dx", "busybox"}, `unknown docker run option "-x" (see ovn-docker run --help)`},
		{[]string{"-foo", "busybox"}, `unknown docker run option "-f" in "-foo" (see ovn-docker run --help)`},
		{[]string{"-dtest.v", "busybox"}, `unknown docker run option "-test.v" (see ovn-docker run --help)`},
		{[]string{"-e", "A=1", "-test.run=x", "busybox"}, `unknown docker run option "-test.run=x" (see ovn-docker run --help)`},
		{[]string{"---x", "busybox"}, `unknown docker run option "---x" (see ovn-docker run --help)`},
		{[]string{"--sig-proxy=false", "busybox"}, `unknown docker run option "--sig-proxy" (see ovn-docker run --help)`},
		{[]string{"--name"}, `docker run option --name needs a value`},
		{[]string{"-h"}, `docker run option --hostname needs a value`},

		{[]string{"-p", "80:80", "busybox"}, `-p/--publish is not supported: the container is reached at its Neutron IP address, so ports are not published`},
		{[]string{"--publish=80:80", "busybox"}, `-p/--publish is not supported: the container is reached at its Neutron IP address, so ports are not published`},
		{[]string{"-p"}, `-p/--publish is not supported: the container is reached at its Neutron IP address, so ports are not published`},
		{[]string{"-dP", "busybox"}, `-P/--publish-all is not supported: the container is reached at its Neutron IP address, so ports are not published`},
		{[]string{"--publish-all", "busybox"}, `-P/--publish-all is not supported: the container is reached at its Neutron IP address, so ports are not published`},
		{[]string{"--ip", "2001:db8::5", "busybox"}, `invalid --ip "2001:db8::5": not an IPv4 address`},
		{[]string{"--ip6=10.0.0.5", "busybox"}, `invalid --ip6 "10.0.0.5": not an IPv6 address`},
		{[]string{"--ip", "x", "busybox"}, `invalid --ip "x": not an IP address`},
		{[]string{"--ip6", "ff02::1", "busybox"}, `invalid --ip6 "ff02::1": not a unicast address`},
		{[]string{"--mac-address", "02:00:00:00:00:01", "busybox"}, `--mac-address is not supported: Neutron assigns the container's addresses`},
		{[]string{"--platform", "linux/arm64", "busybox"}, `--platform is not supported: only the VM's own platform runs`},

		{[]string{"--rm=maybe", "busybox"}, `invalid --rm "maybe": must be true or false`},
		{[]string{"--pids-limit", "x", "busybox"}, `invalid --pids-limit "x": must be an integer`},
		{[]string{"--stop-timeout", "1.5", "busybox"}, `invalid --stop-timeout "1.5": must be an integer`},
		{[]string{"-m", "abc", "busybox"}, `invalid --memory "abc": not a size: use a number with an optional unit b, k, m, g, t or p`},
		{[]string{"-m", "1e300", "busybox"}, `invalid --memory "1e300": not a size: use a number with an optional unit b, k, m, g, t or p`},
		{[]string{"--shm-size", "-1", "busybox"}, `invalid --shm-size "-1": not a size: use a number with an optional unit b, k, m, g, t or p`},
		{[]string{"-m", "4m", "busybox"}, `invalid --memory: the minimum is 6MB`},
		{[]string{"--memory-swap", "1g", "busybox"}, `--memory-swap needs --memory: it limits memory plus swap`},
		{[]string{"-m", "1g", "--memory-swap", "512m", "busybox"}, `--memory-swap must be at least --memory: it limits memory plus swap`},
		{[]string{"-c", "-1", "busybox"}, `invalid --cpu-shares -1: must not be negative`},
		{[]string{"--cpus", "abc", "busybox"}, `invalid --cpus "abc": not a decimal number of CPUs`},
		{[]string{"--cpus", "-1", "busybox"}, `invalid --cpus "-1": not a decimal number of CPUs`},
		{[]string{"--cpus", "1e3", "busybox"}, `invalid --cpus "1e3": not a decimal number of CPUs`},
		{[]string{"--cpus", "1.0000000001", "busybox"}, `invalid --cpus "1.0000000001": too precise: at most 9 decimal places`},
		{[]string{"--cpus", "99999999999", "busybox"}, `invalid --cpus "99999999999": too large`},

		{[]string{"-e", "=x", "busybox"}, `invalid --env "=x": empty variable name`},
		{[]string{"--env-file", "$DIR/missing.env", "busybox"}, `read --env-file: open $DIR/missing.env: no such file or directory`},
		{[]string{"--env-file", "$DIR/badkey.env", "busybox"}, `--env-file $DIR/badkey.env: line 2: name "A B" contains whitespace`},
		{[]string{"--env-file", "$DIR/nokey.env", "busybox"}, `--env-file $DIR/nokey.env: line 1 has no name before '='`},
		{[]string{"-l", "=x", "busybox"}, `invalid --label "=x": empty label name`},
		{[]string{"-l", " a b=1", "busybox"}, `invalid --label " a b=1": label name "a b" contains whitespace`},
		{[]string{"--label-file", "$DIR/badkey.env", "busybox"}, `--label-file $DIR/badkey.env: line 2: name "A B" contains whitespace`},

		{[]string{"-v", "/data:ro", "busybox"}, `invalid --volume "/data:ro": a volume without a source cannot have a mode`},
		{[]string{"-v", "a/b:/x", "busybox"}, `invalid --volume "a/b:/x": "a/b" is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)`},
		{[]string{"-v", "~/x:/x", "busybox"}, `invalid --volume "~/x:/x": "~/x" is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)`},
		{[]string{"-v", "/h:ctr", "busybox"}, `invalid --volume "/h:ctr": destination "ctr" is not an absolute path`},
		{[]string{"-v", "/h:/", "busybox"}, `invalid --volume "/h:/": destination can't be '/'`},
		{[]string{"-v", "/h:/c:bogus", "busybox"}, `invalid --volume "/h:/c:bogus": invalid mode "bogus"`},
		{[]string{"-v", "/h:/c:ro,rw", "busybox"}, `invalid --volume "/h:/c:ro,rw": invalid mode "ro,rw"`},
		{[]string{"-v", "/h:/c:nocopy", "busybox"}, `invalid --volume "/h:/c:nocopy": nocopy only applies to volumes, not to host paths`},
		{[]string{"-v", "a:/b:ro:d", "busybox"}, `invalid --volume "a:/b:ro:d": too many colons, want [SOURCE:]TARGET[:MODES]`},
		{[]string{"-v", ":/x", "busybox"}, `invalid --volume ":/x": empty source`},
		{[]string{"-v", "relative", "busybox"}, `invalid --volume "relative": destination "relative" is not an absolute path`},
		{[]string{"-v", "/a:/x", "-v", "/b:/x/", "busybox"}, `invalid --volume "/b:/x/": duplicate mount point /x`},
		{[]string{"-v", "/a:/x", "--mount", "type=bind,src=/b,dst=/x", "busybox"}, `invalid --mount: duplicate mount point /x`},

		{[]string{"--mount", "type=image,src=x,dst=/x", "busybox"}, `invalid --mount "type=image,src=x,dst=/x": type "image" is not supported (use bind, volume or tmpfs)`},
		{[]string{"--mount", "src=/a", "busybox"}, `invalid --mount "src=/a": destination is empty`},
		{[]string{"--mount", "type=,dst=/a", "busybox"}, `invalid --mount "type=,dst=/a": type is required`},
		{[]string{"--mount", "type=bind,dst=/x", "busybox"}, `invalid --mount "type=bind,dst=/x": type=bind needs a source`},
		{[]string{"--mount", "type=bind,src=rel,dst=/x", "busybox"}, `invalid --mount "type=bind,src=rel,dst=/x": bind source "rel" is not an absolute path`},
		{[]string{"--mount", "type=tmpfs,src=/a,dst=/x", "busybox"}, `invalid --mount "type=tmpfs,src=/a,dst=/x": type=tmpfs takes no source`},
		{[]string{"--mount", "target=/x,readonly", "busybox"}, `invalid --mount "target=/x,readonly": an anonymous volume cannot be read-only`},
		{[]string{"--mount", "type=volume,src=v,dst=/x,tmpfs-size=1m", "busybox"}, `invalid --mount "type=volume,src=v,dst=/x,tmpfs-size=1m": bind-* and tmpfs-* keys do not apply to type=volume`},
		{[]string{"--mount", "type=bind,src=/a,dst=/x,volume-nocopy", "busybox"}, `invalid --mount "type=bind,src=/a,dst=/x,volume-nocopy": volume-* and tmpfs-* keys do not apply to type=bind`},
		{[]string{"--mount", "type=tmpfs,dst=/x,bind-propagation=shared", "busybox"}, `invalid --mount "type=tmpfs,dst=/x,bind-propagation=shared": bind-* and volume-* keys do not apply to type=tmpfs`},
		{[]string{"--mount", "type=bind,src=/a,dst=/x,bind-propagation=bogus", "busybox"}, `invalid --mount "type=bind,src=/a,dst=/x,bind-propagation=bogus": unknown bind-propagation "bogus"`},
		{[]string{"--mount", "type=volume,src=v,dst=/x,volume-driver=nfs", "busybox"}, `invalid --mount "type=volume,src=v,dst=/x,volume-driver=nfs": key "volume-driver" is not supported`},
		{[]string{"--mount", "type=bind,src=/a,dst=/x,bogus", "busybox"}, `invalid --mount "type=bind,src=/a,dst=/x,bogus": field "bogus" must be KEY=VALUE`},
		{[]string{"--mount", "type=bind,src=/a,dst=/x,ro=maybe", "busybox"}, `invalid --mount "type=bind,src=/a,dst=/x,ro=maybe": ro must be true or false`},
		{[]string{"--mount", "type=tmpfs,dst=/x,tmpfs-mode=9", "busybox"}, `invalid --mount "type=tmpfs,dst=/x,tmpfs-mode=9": tmpfs-mode must be an octal file mode`},
		{[]string{"--mount", "type=tmpfs,dst=/x,tmpfs-size=big", "busybox"}, `invalid --mount "type=tmpfs,dst=/x,tmpfs-size=big": tmpfs-size: not a size: use a number with an optional unit b, k, m, g, t or p`},
		{[]string{"--mount", "type=volume,src=a,dst=/x", "busybox"}, `invalid --mount "type=volume,src=a,dst=/x": "a" is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)`},
		{[]string{"--mount", `type=bind,src="/a,dst=/x`, "busybox"}, `invalid --mount "type=bind,src=\"/a,dst=/x": not a comma-separated list: parse error on line 1, column 15: bare " in non-quoted-field`},
		{[]string{"--tmpfs", "rel", "busybox"}, `invalid --tmpfs "rel": destination "rel" is not an absolute path`},
		{[]string{"--tmpfs", "/x:noexec,bogus", "busybox"}, `invalid --tmpfs "/x:noexec,bogus": unknown tmpfs option "bogus"`},

		{[]string{"--restart", "bogus", "busybox"}, `invalid --restart "bogus": unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`},
		{[]string{"--restart", "on-failure:x", "busybox"}, `invalid --restart "on-failure:x": maximum retry count must be an integer`},
		{[]string{"--restart", "on-failure:-1", "busybox"}, `invalid --restart "on-failure:-1": maximum retry count cannot be negative`},
		{[]string{"--restart", "always:3", "busybox"}, `invalid --restart "always:3": maximum retry count can only be used with 'on-failure'`},
		{[]string{"--restart", ":3", "busybox"}, `invalid --restart ":3": no policy before the colon`},
		{[]string{"--restart", "always", "--rm", "busybox"}, `conflicting options: cannot specify both --restart and --rm`},

		{[]string{"--cap-add", "FOO", "busybox"}, `invalid --cap-add "FOO": unknown capability`},
		{[]string{"--cap-drop", "CAP_", "busybox"}, `invalid --cap-drop "CAP_": unknown capability`},
		{[]string{"--cap-drop", "RESET", "busybox"}, `invalid --cap-drop "RESET": unknown capability`},
		{[]string{"--cap-add", " net_admin", "busybox"}, `invalid --cap-add " net_admin": unknown capability`},
		{[]string{"--security-opt", "bogus", "busybox"}, `invalid --security-opt "bogus": want KEY=VALUE`},
		{[]string{"--security-opt", "label=", "busybox"}, `invalid --security-opt "label=": want KEY=VALUE`},
		{[]string{"--security-opt", "foo=bar", "busybox"}, `invalid --security-opt "foo=bar": unknown option "foo"`},
		{[]string{"--security-opt", "no-new-privileges=maybe", "busybox"}, `invalid --security-opt "no-new-privileges=maybe": no-new-privileges must be true or false`},
		{[]string{"--security-opt", "systempaths=x", "busybox"}, `invalid --security-opt "systempaths=x": systempaths only takes unconfined`},
		{[]string{"--security-opt", "seccomp=$DIR/missing.json", "busybox"}, `read seccomp profile for --security-opt: open $DIR/missing.json: no such file or directory`},
		{[]string{"--security-opt", "seccomp=$DIR/notjson", "busybox"}, `seccomp profile $DIR/notjson for --security-opt is not JSON: invalid character 'o' in literal null (expecting 'u')`},

		{[]string{"--dns", "bogus", "busybox"}, `invalid --dns "bogus": not an IP address`},
		{[]string{"--dns-search", "-bad-", "busybox"}, `invalid --dns-search "-bad-": not a valid domain`},
		{[]string{"--dns-search", "123", "busybox"}, `invalid --dns-search "123": not a valid domain`},
		{[]string{"--dns-search", "a..b", "busybox"}, `invalid --dns-search "a..b": not a valid domain`},
		{[]string{"--add-host", "nocolon", "busybox"}, `invalid --add-host "nocolon": want HOST:IP`},
		{[]string{"--add-host", ":1.2.3.4", "busybox"}, `invalid --add-host ":1.2.3.4": want HOST:IP`},
		{[]string{"--add-host", "h=bogus", "busybox"}, `invalid --add-host "h=bogus": "bogus" is not an IP address`},
		{[]string{"--add-host", "a:b=1.2.3.4", "busybox"}, `invalid --add-host "a:b=1.2.3.4": want HOST:IP`},

		{[]string{"--sysctl", "vm.swappiness=1", "busybox"}, `invalid --sysctl "vm.swappiness=1": docker does not allow sysctl "vm.swappiness" in a container`},
		{[]string{"--sysctl", "net.ipv4.ip_forward", "busybox"}, `invalid --sysctl "net.ipv4.ip_forward": want NAME=VALUE`},
		{[]string{"--ulimit", "nofile", "busybox"}, `invalid --ulimit "nofile": invalid ulimit argument: nofile`},
		{[]string{"--ulimit", "bogus=1", "busybox"}, `invalid --ulimit "bogus=1": invalid ulimit type: bogus`},
		{[]string{"--ulimit", "nofile=x", "busybox"}, `invalid --ulimit "nofile=x": limit "x" is not an integer`},
		{[]string{"--ulimit", "nofile=2:1", "busybox"}, `invalid --ulimit "nofile=2:1": ulimit soft limit must be less than or equal to hard limit: 2 > 1`},

		{[]string{"--stop-signal", "bogus", "busybox"}, `invalid --stop-signal "bogus": unknown signal`},
		{[]string{"--stop-signal", "0", "busybox"}, `invalid --stop-signal "0": signal number must be between 1 and 64`},
		{[]string{"--stop-signal", "65", "busybox"}, `invalid --stop-signal "65": signal number must be between 1 and 64`},
		{[]string{"--stop-signal", "RTMIN+16", "busybox"}, `invalid --stop-signal "RTMIN+16": unknown signal`},
		{[]string{"--stop-signal", "RTMIN++3", "busybox"}, `invalid --stop-signal "RTMIN++3": unknown signal`},
		{[]string{"--log-driver", "none", "--log-opt", "a=b", "busybox"}, `--log-opt cannot be used with --log-driver none`},
		{[]string{"-w", "rel", "busybox"}, `invalid --workdir "rel": must be an absolute path`},
		{[]string{"--name", "bad name", "busybox"}, `invalid --name "bad name": only [a-zA-Z0-9][a-zA-Z0-9_.-]+ is allowed`},
		{[]string{"--name", "a", "busybox"}, `invalid --name "a": only [a-zA-Z0-9][a-zA-Z0-9_.-]+ is allowed`},
		{[]string{"--pull", "sometimes", "busybox"}, `invalid --pull "sometimes": want always, missing or never`},
		{[]string{"--network=", "busybox"}, `invalid --network: empty network name`},
		{[]string{"--net", "none", "--network", "ls1", "busybox"}, `--network may be given only once: ovn-docker attaches one network`},
		{[]string{"UPPER"}, `invalid image "UPPER": invalid reference format: repository name (library/UPPER) must be lowercase`},
		{[]string{"--", "-x"}, `invalid image "-x": invalid reference format`},
		{[]string{""}, `invalid image "": invalid reference format`},
	}
	for _, tc := range cases {
		args := expand(tc.args, dir)
		want := strings.ReplaceAll(tc.want, "$DIR", dir)
		o, err := ParseWithEnv(args, nil)
		if err == nil {
			t.Errorf("ParseWithEnv(%q) = %+v, want error %q", args, o, want)
			continue
		}
		if err.Error() != want {
			t.Errorf("ParseWithEnv(%q) error\n got %q\nwant %q", args, err, want)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-d", "--help", "busybox"}, {"--help=true"}} {
		if _, err := ParseWithEnv(args, nil); !errors.Is(err, ErrHelp) {
			t.Errorf("ParseWithEnv(%q) error = %v, want ErrHelp", args, err)
		}
	}
	// After the image, --help belongs to the command.
	o, err := ParseWithEnv([]string{"busybox", "--help"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]string(o.Config.Cmd), []string{"--help"}) {
		t.Errorf("Cmd = %q, want [--help]", o.Config.Cmd)
	}
}

// TestParseUsesProcessEnv checks that Parse, unlike ParseWithEnv, reads the
// real environment for a bare -e NAME.
func TestParseUsesProcessEnv(t *testing.T) {
	t.Setenv("RUNARGS_TEST_VAR", "from-env")
	o, err := Parse([]string{"-e", "RUNARGS_TEST_VAR", "-e", "RUNARGS_TEST_UNSET_VAR", "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"RUNARGS_TEST_VAR=from-env", "RUNARGS_TEST_UNSET_VAR"}
	if !reflect.DeepEqual(o.Config.Env, want) {
		t.Errorf("Env = %q, want %q", o.Config.Env, want)
	}
}

// TestUsage checks that --help advertises exactly what Parse accepts: every
// listed option parses, and the refused ones are not listed as options.
func TestUsage(t *testing.T) {
	u := Usage()
	head, _, ok := strings.Cut(u, "\nRefused:")
	if !ok {
		t.Fatalf("usage has no Refused section:\n%s", u)
	}
	listed := regexp.MustCompile(`(?m)^\s+(?:-\w, )?(--[a-z-]+)`).FindAllStringSubmatch(head, -1)
	if len(listed) < 40 {
		t.Fatalf("usage lists %d options, want at least 40:\n%s", len(listed), u)
	}
	seen := map[string]bool{}
	for _, m := range listed {
		name := m[1]
		seen[name] = true
		_, err := ParseWithEnv([]string{name + "=x", "busybox"}, nil)
		if err != nil && strings.HasPrefix(err.Error(), "unknown docker run option") {
			t.Errorf("usage lists %s but Parse does not know it: %v", name, err)
		}
	}
	for _, name := range []string{"--env", "--volume", "--mount", "--restart", "--network", "--dns", "--memory", "--ulimit"} {
		if !seen[name] {
			t.Errorf("usage does not list %s", name)
		}
	}
	for _, name := range []string{"--publish", "--publish-all", "--mac-address", "--platform", "--net", "--dns-opt"} {
		if seen[name] {
			t.Errorf("usage lists %s as an option", name)
		}
	}
}
