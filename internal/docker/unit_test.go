package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
)

// fakeELF returns a minimal 64-bit little-endian ELF image with the given type; with
// interp set it carries a PT_INTERP segment naming that loader, like a dynamically
// linked executable.
func fakeELF(t *testing.T, typ elf.Type, interp string) []byte {
	t.Helper()
	progs := []elf.Prog64{{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Align: 0x1000}}
	if interp != "" {
		progs = append([]elf.Prog64{{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Align: 1}}, progs...)
	}
	const ehsize, phsize = 64, 56
	dataOff := uint64(ehsize + phsize*len(progs))
	if interp != "" {
		progs[0].Off = dataOff
		progs[0].Filesz = uint64(len(interp) + 1)
		progs[0].Memsz = progs[0].Filesz
	}
	hdr := elf.Header64{
		Type:      uint16(typ),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Phoff:     ehsize,
		Ehsize:    ehsize,
		Phentsize: phsize,
		Phnum:     uint16(len(progs)),
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, hdr); err != nil {
		t.Fatal(err)
	}
	for _, p := range progs {
		if err := binary.Write(&buf, binary.LittleEndian, p); err != nil {
			t.Fatal(err)
		}
	}
	if interp != "" {
		buf.WriteString(interp + "\x00")
	}
	return buf.Bytes()
}

func TestRuntimeOf(t *testing.T) {
	dir := t.TempDir()
	loader := filepath.Join(dir, "ld.so")
	if err := os.WriteFile(loader, []byte("loader"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "lib64-ld.so")
	if err := os.Symlink(loader, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		data      []byte
		wantFiles []string // name in the image <- file on the host
		wantErr   []string // substrings; none means accepted
	}{
		{name: "static executable", data: fakeELF(t, elf.ET_EXEC, "")},
		{name: "static pie", data: fakeELF(t, elf.ET_DYN, "")},
		{name: "dynamic executable", data: fakeELF(t, elf.ET_EXEC, link), wantFiles: []string{link[1:] + " <- " + loader}},
		{name: "loader missing", data: fakeELF(t, elf.ET_EXEC, "/nonexistent/ld.so"), wantErr: []string{"dynamically linked", "/nonexistent/ld.so", "not on this host", "CGO_ENABLED=0"}},
		{name: "relative loader", data: fakeELF(t, elf.ET_EXEC, "ld.so"), wantErr: []string{"relative loader"}},
		{name: "relocatable object", data: fakeELF(t, elf.ET_REL, ""), wantErr: []string{"not an executable"}},
		{name: "script", data: []byte("#!/bin/sh\nexit 0\n"), wantErr: []string{"not an ELF executable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := runtimeOf("/x/exe", bytes.NewReader(tc.data))
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("runtimeOf: %v", err)
				}
				var got []string
				for _, f := range rt.files {
					got = append(got, f.name+" <- "+f.host)
				}
				if strings.Join(got, "; ") != strings.Join(tc.wantFiles, "; ") {
					t.Errorf("files = %q, want %q", got, tc.wantFiles)
				}
				if (rt.libDir != "") != (len(tc.wantFiles) > 0) {
					t.Errorf("library directory %q with %d files", rt.libDir, len(rt.files))
				}
				return
			}
			if err == nil {
				t.Fatal("runtimeOf accepted it")
			}
			for _, s := range append(tc.wantErr, "/x/exe") {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

// TestRuntimeOfHostExecutable resolves what a real dynamically linked executable of
// this host needs: its loader where the kernel looks for it and libc, for the image's
// library directory.
func TestRuntimeOfHostExecutable(t *testing.T) {
	const exe = "/bin/true"
	f, err := os.Open(exe)
	if err != nil {
		t.Skipf("no %s: %v", exe, err)
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		t.Fatal(err)
	}
	interp := interpreter(ef)
	if interp == "" {
		t.Skipf("%s is static on this host", exe)
	}
	rt, err := runtimeOf(exe, f)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]string{}
	for _, pf := range rt.files {
		byName[pf.name] = pf.host
	}
	if host := byName[interp[1:]]; host == "" || !filepath.IsAbs(host) {
		t.Errorf("loader %s missing from %v", interp, byName)
	}
	if host := byName[pauseLibDir[1:]+"/libc.so.6"]; host == "" {
		t.Errorf("libc.so.6 missing from %v", byName)
	} else if fi, err := os.Lstat(host); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("libc.so.6 from %s: %v, %v; want a regular file (links resolved)", host, fi, err)
	}
	if rt.libDir != pauseLibDir {
		t.Errorf("library directory %q, want %q", rt.libDir, pauseLibDir)
	}
}

func TestEnsurePauseImageRefusesBeforeTalkingToDocker(t *testing.T) {
	dir := t.TempDir()
	dyn := filepath.Join(dir, "dyn")
	if err := os.WriteFile(dyn, fakeELF(t, elf.ET_EXEC, "/lib/ld.so"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A nil API client would panic if the checks let the call through to Docker.
	c := &Client{}
	for exe, want := range map[string]string{
		dyn:                          "not on this host",
		dir:                          "not a regular file",
		filepath.Join(dir, "absent"): "no such file",
	} {
		_, err := c.EnsurePauseImage(context.Background(), exe)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("EnsurePauseImage(%s) = %v, want error containing %q", exe, err, want)
		}
	}
}

func TestEnsureImageUnknownPolicy(t *testing.T) {
	c := &Client{}
	err := (c).EnsureImage(context.Background(), "foo:1", "sometimes")
	if err == nil || !strings.Contains(err.Error(), `unknown pull policy "sometimes"`) {
		t.Fatalf("EnsureImage = %v, want unknown pull policy error", err)
	}
}

func TestNewUnreachable(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "docker.sock")
	ctx := t.Context() // no deadline: a missing socket fails at once
	c, err := New(ctx, sock)
	if err == nil {
		c.Close()
		t.Fatal("New succeeded without a daemon")
	}
	if want := "docker is not reachable at " + sock + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q does not start with %q", err, want)
	}
	t.Log(err)
}

func TestNewUsesDockerHost(t *testing.T) {
	sock := "unix://" + filepath.Join(t.TempDir(), "env.sock")
	t.Setenv("DOCKER_HOST", sock)
	ctx := t.Context() // no deadline: a missing socket fails at once
	c, err := New(ctx, "")
	if err == nil {
		c.Close()
		t.Fatal("New succeeded without a daemon")
	}
	if want := "docker is not reachable at " + sock + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q does not start with %q", err, want)
	}
}

func TestReadProgress(t *testing.T) {
	last, err := readProgress(strings.NewReader(`{"status":"Pulling"}` + "\n" + `{"status":"sha256:abc"}` + "\n"))
	if err != nil || last != "sha256:abc" {
		t.Fatalf("readProgress = %q, %v; want sha256:abc, nil", last, err)
	}
	_, err = readProgress(strings.NewReader(`{"status":"Pulling"}{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}{"status":"never read"}`))
	if err == nil || err.Error() != "manifest unknown" {
		t.Fatalf("readProgress error = %v, want manifest unknown", err)
	}
	_, err = readProgress(strings.NewReader(`{"status":`))
	if err == nil {
		t.Fatal("readProgress accepted a truncated stream")
	}
}

func TestWritePauseTar(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) pauseFile {
		host := filepath.Join(dir, name)
		if err := os.WriteFile(host, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		pf := pauseFile{host: host, mode: 0o755}
		if err := pf.hash(); err != nil {
			t.Fatal(err)
		}
		return pf
	}
	exe, lib := write("exe", "\x7fELF pretend binary"), write("libc", "pretend libc")
	exe.name, lib.name = "ovn-docker", "lib/ovn-docker/libc.so.6"
	var buf bytes.Buffer
	if err := writePauseTar(&buf, []pauseFile{exe, lib}); err != nil {
		t.Fatalf("writePauseTar: %v", err)
	}
	tr := tar.NewReader(&buf)
	var got []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got = append(got, fmt.Sprintf("%s %o %c %q", hdr.Name, hdr.Mode, hdr.Typeflag, b))
	}
	want := []string{
		`ovn-docker 755 0 "\x7fELF pretend binary"`,
		`lib/ 755 5 ""`,
		`lib/ovn-docker/ 755 5 ""`,
		`lib/ovn-docker/libc.so.6 755 0 "pretend libc"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A file that no longer matches its hash (a new binary, a libc upgrade) must not
	// be imported.
	if err := os.WriteFile(lib.host, []byte("upgraded libc"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := writePauseTar(io.Discard, []pauseFile{exe, lib})
	if err == nil || !strings.Contains(err.Error(), "changed") || !strings.Contains(err.Error(), lib.host) {
		t.Fatalf("writePauseTar with a stale hash = %v, want %s changed", err, lib.host)
	}
}

func TestPauseTag(t *testing.T) {
	exe := pauseFile{name: "ovn-docker", sum: strings.Repeat("ab", 32)}
	if got := pauseTag([]pauseFile{exe}); got != exe.sum[:12] {
		t.Errorf("static tag %q, want the executable's %q", got, exe.sum[:12])
	}
	libc := pauseFile{name: "lib/ovn-docker/libc.so.6", sum: strings.Repeat("cd", 32)}
	dyn := pauseTag([]pauseFile{exe, libc})
	libc.sum = strings.Repeat("ef", 32)
	if upgraded := pauseTag([]pauseFile{exe, libc}); len(dyn) != 12 || dyn == exe.sum[:12] || upgraded == dyn {
		t.Errorf("tags: with libs %q, after a libc change %q; want 12 digits, each different from %q", dyn, upgraded, exe.sum[:12])
	}
}

func TestSandboxConfig(t *testing.T) {
	cfg, hc := sandboxConfig(SandboxSpec{
		Name: "sb", Image: "img:1", Cmd: []string{"/ovn-docker", "pause"},
		Labels: map[string]string{"k": "v"}, Hostname: "h", Domainname: "example.org",
		DNS: []string{"192.0.2.53"}, DNSSearch: []string{"example.org"}, DNSOptions: []string{"ndots:2"},
		ExtraHosts: []string{"gw:192.0.2.1"},
	})
	if cfg.Image != "img:1" || strings.Join(cfg.Entrypoint, " ") != "/ovn-docker pause" || cfg.Cmd != nil || cfg.Labels["k"] != "v" ||
		cfg.Hostname != "h" || cfg.Domainname != "example.org" {
		t.Errorf("config = %+v", cfg)
	}
	if hc.NetworkMode != "none" || hc.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
		t.Errorf("network mode %q restart %q, want none, unless-stopped", hc.NetworkMode, hc.RestartPolicy.Name)
	}
	if hc.DNS[0] != "192.0.2.53" || hc.DNSSearch[0] != "example.org" || hc.DNSOptions[0] != "ndots:2" || hc.ExtraHosts[0] != "gw:192.0.2.1" {
		t.Errorf("name resolution settings lost: %+v", hc)
	}
	if hc.Memory == 0 || hc.PidsLimit == nil || *hc.PidsLimit == 0 || !hc.ReadonlyRootfs {
		t.Errorf("sandbox is not limited: memory %d pids %v readonly %v", hc.Memory, hc.PidsLimit, hc.ReadonlyRootfs)
	}
	if cfg, _ := sandboxConfig(SandboxSpec{Image: "img:1"}); cfg.Cmd != nil || cfg.Entrypoint != nil {
		t.Errorf("empty Cmd became %q %q; the image default must apply", cfg.Entrypoint, cfg.Cmd)
	}
	always := container.RestartPolicy{Name: container.RestartPolicyAlways}
	if _, hc := sandboxConfig(SandboxSpec{Image: "img:1", RestartPolicy: always}); hc.RestartPolicy != always {
		t.Errorf("restart policy %+v, want the spec's %+v", hc.RestartPolicy, always)
	}
}

func TestEventFromMessage(t *testing.T) {
	e := eventFromMessage(events.Message{
		Type: events.ContainerEventType, Action: events.ActionDie,
		Actor:    events.Actor{ID: "abc", Attributes: map[string]string{"name": "c1", "image": "busybox:local", "exitCode": "3", "ovn-docker.network": "n1"}},
		TimeNano: 1_700_000_000_123_456_789,
	})
	if e.Action != "die" || e.ID != "abc" || e.Name != "c1" || e.Image != "busybox:local" || e.ExitCode != 3 {
		t.Errorf("event = %+v", e)
	}
	if len(e.Labels) != 1 || e.Labels["ovn-docker.network"] != "n1" {
		t.Errorf("labels = %v, want only ovn-docker.network", e.Labels)
	}
	if !e.Time.Equal(time.Unix(0, 1_700_000_000_123_456_789)) {
		t.Errorf("time = %v", e.Time)
	}
}

func TestNetNSPath(t *testing.T) {
	if got := NetNSPath(42); got != "/proc/42/ns/net" {
		t.Fatalf("NetNSPath(42) = %q", got)
	}
}

// pauseSubprocessEnv marks the test binary re-executed by TestPauseReapsAndStops.
const pauseSubprocessEnv = "OVND_DOCKER_PAUSE_SUBPROCESS"

// TestPauseReapsAndStops runs Pause with a child that exits: the child must not stay a
// zombie, and cancelling the context returns 0. Pause reaps every child of its process,
// so it runs in a re-executed test binary, away from this one's other children. Nothing
// is timed: the subprocess waits for the reaping and for Pause to return, bounded by
// this test's own -test.timeout, which it inherits.
func TestPauseReapsAndStops(t *testing.T) {
	if os.Getenv(pauseSubprocessEnv) == "" {
		args := []string{"-test.run=^TestPauseReapsAndStops$", "-test.count=1", "-test.v"}
		if deadline, ok := t.Deadline(); ok {
			// A little before this binary's own end, so that the subprocess ends first and
			// its panic says where it waited.
			left := time.Until(deadline)
			args = append(args, "-test.timeout="+(left-left/10).String())
		}
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), pauseSubprocessEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestPauseReapsAndStops")) {
			t.Fatalf("subprocess: %v\n%s", err, out)
		}
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- Pause(ctx) }()

	child, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit 0"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	pid := child.Pid
	// Once reaped the pid is gone; an unreaped child stays as a zombie, and this waits
	// until the test's timeout.
	for syscall.Kill(pid, 0) != syscall.ESRCH {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("Pause returned %d, want 0", code)
	}
}
