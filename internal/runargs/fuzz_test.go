package runargs

import (
	"strings"
	"testing"
	"unicode"

	"github.com/distribution/reference"
)

// FuzzParse feeds arbitrary argument lists (NUL-separated) to Parse: it
// must never panic, every accepted input must name a valid image and keep
// the invariants callers rely on, and every error must read as a lowercase
// message.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"-d\x00--net=none\x00busybox\x00sleep\x001000",
		"-dit\x00--rm\x00--name\x00web\x00busybox",
		"-e\x00A=1\x00-e\x00B\x00-l\x00k=v\x00busybox\x00sh\x00-c\x00echo hi",
		"-v\x00/h:/c:ro\x00-v\x00./rel:/rel\x00--mount\x00type=bind,src=/a,dst=/b\x00busybox",
		"--tmpfs\x00/run:size=64m\x00--restart\x00on-failure:3\x00-m\x00512m\x00--cpus\x001.5\x00busybox",
		"--ulimit\x00nofile=1:2\x00--sysctl\x00net.ipv4.ip_forward=1\x00--cap-add\x00net_admin\x00busybox",
		"--dns\x001.1.1.1\x00--dns-search\x00example.com\x00--add-host\x00a:1.2.3.4\x00-h\x00x\x00busybox",
		"--stop-signal\x00RTMIN+3\x00--stop-timeout\x005\x00--init\x00--pull=never\x00busybox",
		"-p\x0080:80\x00busybox",
		"--\x00busybox\x00--help",
		"-dtest.v\x00busybox",
		"",
	} {
		f.Add(seed)
	}
	lookup := func(k string) (string, bool) {
		if k == "SET" {
			return "value", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, joined string) {
		// Options that read files would let the fuzzer wander the file
		// system; the table tests cover them.
		if strings.Contains(joined, "file") || strings.Contains(joined, "seccomp") {
			t.Skip()
		}
		args := strings.Split(joined, "\x00")
		o, err := ParseWithEnv(args, lookup)
		if err != nil {
			msg := err.Error()
			if msg == "" {
				t.Fatalf("ParseWithEnv(%q): empty error", args)
			}
			if r := []rune(msg)[0]; unicode.IsUpper(r) {
				t.Fatalf("ParseWithEnv(%q): error %q starts with a capital", args, msg)
			}
			return
		}
		if o == nil || o.Config == nil || o.HostConfig == nil {
			t.Fatalf("ParseWithEnv(%q) = %+v with no error", args, o)
		}
		if o.Config.Image == "" {
			t.Fatalf("ParseWithEnv(%q) accepted an empty image", args)
		}
		if _, err := reference.ParseAnyReference(o.Config.Image); err != nil {
			t.Fatalf("ParseWithEnv(%q) accepted image %q: %v", args, o.Config.Image, err)
		}
		switch o.Pull {
		case PullMissing, PullAlways, PullNever:
		default:
			t.Fatalf("ParseWithEnv(%q): pull %q", args, o.Pull)
		}
		if o.Config.Hostname != "" || o.Config.Domainname != "" || o.HostConfig.NetworkMode != "" ||
			len(o.HostConfig.DNS) > 0 || len(o.HostConfig.ExtraHosts) > 0 {
			t.Fatalf("ParseWithEnv(%q): network namespace settings leaked into the create request", args)
		}
		if o.HostConfig.AutoRemove != o.Remove || (o.Remove && !o.HostConfig.RestartPolicy.IsNone()) {
			t.Fatalf("ParseWithEnv(%q): --rm %v with restart policy %+v", args, o.Remove, o.HostConfig.RestartPolicy)
		}
		for k := range o.HostConfig.Sysctls {
			if strings.HasPrefix(k, "net.") {
				t.Fatalf("ParseWithEnv(%q): net sysctl %s in the create request", args, k)
			}
		}
		if o.Detach && (o.Config.AttachStdin || o.Config.AttachStdout || o.Config.AttachStderr || o.Config.StdinOnce) {
			t.Fatalf("ParseWithEnv(%q): detached but attached", args)
		}
	})
}
