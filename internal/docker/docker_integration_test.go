//go:build integration

package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// The private daemon every test of this package talks to.
var env struct {
	host    string // unix://.../docker.sock
	helper  string // static pause helper built from testdata/pausehelper
	busybox string // image with busybox and a few applet links
	lockDir string // lock directory for pause image imports
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv(pauseSubprocessEnv) != "" {
		// A re-executed test binary that needs no daemon.
		return m.Run()
	}
	// Setting up waits for dockerd for as long as the run's time (-timeout) lasts: go
	// test's own alarm only starts in m.Run.
	ctx, cancel := runContext()
	defer cancel()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "docker integration tests need root (they run a private dockerd)")
		return 1
	}
	dir, err := os.MkdirTemp("", "ovnd-dkr-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, err := startDockerd(ctx, dir)
	defer func() {
		if err := d.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.host = d.host
	env.lockDir = filepath.Join(dir, "locks")
	if err := os.Mkdir(env.lockDir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env.helper, err = buildHelper(dir, false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env.busybox, err = importBusybox(ctx, d.host); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// runContext ends shortly before the test binary's -timeout (if it has one).
func runContext() (context.Context, context.CancelFunc) {
	flag.Parse()
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 0 {
			return context.WithTimeout(context.Background(), d-min(30*time.Second, d/2))
		}
	}
	return context.WithCancel(context.Background())
}

type dockerd struct {
	dir  string
	host string
	cmd  *exec.Cmd
	exit chan error
}

// dockerdPath prefers the path the stack's install documents; Debian ships it in sbin.
func dockerdPath() (string, error) {
	for _, p := range []string{"/usr/bin/dockerd", "/usr/sbin/dockerd"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", errors.New("dockerd not found at /usr/bin/dockerd or /usr/sbin/dockerd: run the stack's install script (it installs docker.io)")
}

// startDockerd starts dockerd and waits until it answers, it exits or ctx ends.
func startDockerd(ctx context.Context, dir string) (*dockerd, error) {
	d := &dockerd{dir: dir, host: "unix://" + filepath.Join(dir, "docker.sock")}
	bin, err := dockerdPath()
	if err != nil {
		return d, err
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return d, err
	}
	defer logf.Close()
	d.cmd = exec.Command(bin,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "pid"),
		"-H", d.host,
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
	)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		return d, fmt.Errorf("start dockerd: %w", err)
	}
	d.exit = make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		err := d.cmd.Wait()
		close(exited)
		d.exit <- err
	}()
	// An attempt ends when dockerd does: a socket that accepts and never answers keeps
	// it waiting until then (or until the run's time is up).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		c, err := New(ctx, d.host)
		if err == nil {
			c.Close()
			return d, nil
		}
		select {
		case <-exited:
			werr := <-d.exit
			d.exit <- werr
			return d, fmt.Errorf("dockerd exited: %v\n%s", werr, d.logTail())
		case <-ctx.Done():
			return d, fmt.Errorf("dockerd did not come up when the run's time was up: %v\n%s", err, d.logTail())
		case <-time.After(50 * time.Millisecond): // the socket is not there yet
		}
	}
}

func (d *dockerd) logTail() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "dockerd.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop ends dockerd (which stops its containers and its containerd), then removes
// whatever outlived it: processes using the directory, mounts under it, the directory.
// The SIGKILL after 45 s only keeps a stuck daemon from outliving the run: no test's
// result depends on it.
func (d *dockerd) stop() error {
	var errs []error
	if d.cmd != nil && d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exit:
		case <-time.After(45 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.exit
			errs = append(errs, errors.New("dockerd ignored SIGTERM"))
		}
	}
	killProcsUnder(d.dir)
	if err := unmountUnder(d.dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(d.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killProcsUnder kills leftover processes (containerd, shims) whose command line
// names dir; only this test's private daemon uses that directory.
func killProcsUnder(dir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	var errs []error
	// Deepest (latest) first.
	for i := len(points) - 1; i >= 0; i-- {
		if err := unix.Unmount(points[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", points[i], err))
		}
	}
	return errors.Join(errs...)
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// buildHelper builds the pause helper, statically linked unless cgo is true.
func buildHelper(dir string, cgo bool) (string, error) {
	out, setting := filepath.Join(dir, "pausehelper"), "CGO_ENABLED=0"
	if cgo {
		out, setting = filepath.Join(dir, "pausehelper-cgo"), "CGO_ENABLED=1"
	}
	cmd := exec.Command(goTool(), "build", "-o", out, "./testdata/pausehelper")
	cmd.Env = append(os.Environ(), setting)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build pause helper: %v\n%s", err, b)
	}
	return out, nil
}

// importBusybox builds busybox:local from the static busybox of busybox-static.
func importBusybox(ctx context.Context, host string) (string, error) {
	const ref = "busybox:local"
	bb := "/bin/busybox"
	f, err := os.Open(bb)
	if err != nil {
		return "", fmt.Errorf("busybox image: %w (install busybox-static)", err)
	}
	defer f.Close()
	if ef, err := elf.NewFile(f); err != nil {
		return "", fmt.Errorf("busybox image: %s: %w", bb, err)
	} else {
		for _, p := range ef.Progs {
			if p.Type == elf.PT_INTERP {
				return "", fmt.Errorf("busybox image: %s is dynamically linked (install busybox-static)", bb)
			}
		}
	}
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755})
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: st.Size()})
		}
		if err == nil {
			_, err = io.Copy(tw, io.NewSectionReader(f, 0, st.Size()))
		}
		for _, applet := range []string{"sh", "sleep", "ip", "ping", "cat", "true", "false", "echo"} {
			if err == nil {
				err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777})
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	c, err := New(ctx, host)
	if err != nil {
		return "", err
	}
	defer c.Close()
	rc, err := c.api.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, ref, image.ImportOptions{Changes: []string{"ENV PATH=/bin"}})
	if err != nil {
		return "", fmt.Errorf("import %s: %w", ref, err)
	}
	defer rc.Close()
	if _, err := readProgress(rc); err != nil {
		return "", fmt.Errorf("import %s: %w", ref, err)
	}
	return ref, nil
}

// newClient connects to the private daemon; imports lock in a test-owned directory.
func newClient(t *testing.T) *Client {
	t.Helper()
	c, err := New(testCtx(t), env.host)
	if err != nil {
		t.Fatal(err)
	}
	c.lockDir = env.lockDir
	t.Cleanup(func() { c.Close() })
	return c
}

// testCtx bounds a test's calls by the run's time only (see testutil.Context): a slow
// daemon makes them slower, not failed.
func testCtx(t *testing.T) context.Context { return testutil.Context(t) }

var (
	nameRE  = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)
	nameSeq atomic.Int64
)

// uniqueName is a container name for this test; the container is removed on cleanup.
func uniqueName(t *testing.T, c *Client, suffix string) string {
	name := fmt.Sprintf("ovnd-%s-%s-%d-%d", nameRE.ReplaceAllString(t.Name(), "_"), suffix, os.Getpid(), nameSeq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := testutil.TimeoutContext(t)
		defer cancel()
		if err := c.Remove(ctx, name, true); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func imagesWithLabel(t *testing.T, c *Client, label string) []image.Summary {
	t.Helper()
	imgs, err := c.api.ImageList(testCtx(t), image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", label))})
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

func ensurePauseConcurrently(t *testing.T, exe string, lockDir string) []string {
	t.Helper()
	const n = 10
	refs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		// A client each, as separate processes would have.
		c := newClient(t)
		c.lockDir = lockDir
		wg.Add(1)
		go func() {
			defer wg.Done()
			refs[i], errs[i] = c.EnsurePauseImage(testCtx(t), exe)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	return refs
}

func TestPauseImageIdempotentAndConcurrent(t *testing.T) {
	c := newClient(t)
	sum := fileSum(t, env.helper)
	want := PauseRepo + ":" + sum[:12]

	refs := ensurePauseConcurrently(t, env.helper, env.lockDir)
	for i, ref := range refs {
		if ref != want {
			t.Errorf("caller %d got %q, want %q", i, ref, want)
		}
	}
	imgs := imagesWithLabel(t, c, PauseLabel+"="+sum)
	if len(imgs) != 1 {
		t.Fatalf("%d images carry %s=%s, want exactly 1: %+v", len(imgs), PauseLabel, sum, imgs)
	}
	if len(imgs[0].RepoTags) != 1 || imgs[0].RepoTags[0] != want {
		t.Errorf("image tags %v, want [%s]", imgs[0].RepoTags, want)
	}
	insp, err := c.api.ImageInspect(testCtx(t), want)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(insp.Config.Entrypoint, " ") != "/ovn-docker" || strings.Join(insp.Config.Cmd, " ") != "pause" {
		t.Errorf("image runs %q %q, want /ovn-docker pause", insp.Config.Entrypoint, insp.Config.Cmd)
	}

	// Again: same reference, same image, nothing imported.
	ref, err := c.EnsurePauseImage(testCtx(t), env.helper)
	if err != nil || ref != want {
		t.Fatalf("second EnsurePauseImage = %q, %v", ref, err)
	}
	again := imagesWithLabel(t, c, PauseLabel+"="+sum)
	if len(again) != 1 || again[0].ID != imgs[0].ID {
		t.Fatalf("images after a second call: %+v, want only %s", again, imgs[0].ID)
	}
}

// TestPauseImageConcurrentWithoutLock covers callers that share no lock (other hosts'
// processes, or a lock directory they cannot write): none of them may fail.
func TestPauseImageConcurrentWithoutLock(t *testing.T) {
	c := newClient(t)
	// Trailing bytes give a different hash, so this really imports.
	exe := filepath.Join(t.TempDir(), "pause")
	b, err := os.ReadFile(env.helper)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, append(b, []byte(t.Name())...), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := fileSum(t, exe)
	want := PauseRepo + ":" + sum[:12]
	t.Cleanup(func() {
		for _, img := range imagesWithLabel(t, c, PauseLabel+"="+sum) {
			_, _ = c.api.ImageRemove(context.Background(), img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		}
	})
	for i, ref := range ensurePauseConcurrently(t, exe, "") {
		if ref != want {
			t.Errorf("caller %d got %q, want %q", i, ref, want)
		}
	}
	if _, err := c.api.ImageInspect(testCtx(t), want); err != nil {
		t.Fatalf("%s missing after concurrent imports: %v", want, err)
	}
	t.Logf("%d images carry the label; untagged duplicates are possible without the lock", len(imagesWithLabel(t, c, PauseLabel+"="+sum)))
}

// dynamicHelper builds the pause helper as plain "go build" does where a C compiler
// exists: cgo on, so dynamically linked against the host's libc.
func dynamicHelper(t *testing.T) string {
	t.Helper()
	exe, err := buildHelper(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	if interpreter(ef) == "" {
		t.Fatalf("%s built with CGO_ENABLED=1 is static: no C compiler on this machine? The test needs a dynamically linked helper", exe)
	}
	return exe
}

func TestPauseImageOfDynamicExe(t *testing.T) {
	c := newClient(t)
	exe := dynamicHelper(t)
	ref, err := c.EnsurePauseImage(testCtx(t), exe)
	if err != nil {
		t.Fatal(err)
	}
	if sum := fileSum(t, exe); ref == PauseRepo+":"+sum[:12] {
		t.Errorf("tag %s is the executable's alone; it must cover its libraries too", ref)
	}
	insp, err := c.api.ImageInspect(testCtx(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(insp.Config.Env, "LD_LIBRARY_PATH="+pauseLibDir) {
		t.Errorf("image environment %q lacks LD_LIBRARY_PATH=%s", insp.Config.Env, pauseLibDir)
	}
	again, err := c.EnsurePauseImage(testCtx(t), exe)
	if err != nil || again != ref {
		t.Fatalf("second EnsurePauseImage = %q, %v; want %q", again, err, ref)
	}
}

func pauseImage(t *testing.T, c *Client) string {
	t.Helper()
	ref, err := c.EnsurePauseImage(testCtx(t), env.helper)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// runInSandbox runs busybox "sh -c script" in the sandbox's network namespace and
// returns its stdout.
func runInSandbox(t *testing.T, c *Client, sandboxID, script string) string {
	t.Helper()
	ctx := testCtx(t)
	name := uniqueName(t, c, "joined")
	id, _, err := c.Create(ctx, name,
		&container.Config{Image: env.busybox, Cmd: []string{"sh", "-c", script}},
		&container.HostConfig{NetworkMode: container.NetworkMode("container:" + sandboxID)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := c.Stream(ctx, id, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	code, err := c.Wait(ctx, id)
	if err != nil || code != 0 {
		t.Fatalf("joined container exited %d, %v; stderr: %s", code, err, stderr.String())
	}
	info, err := c.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.NetworkMode != "container:"+sandboxID {
		t.Errorf("joined container network mode %q, want container:%s", info.NetworkMode, sandboxID)
	}
	return stdout.String()
}

func TestSandboxSharesNetworkWithJoinedContainer(t *testing.T) {
	c := newClient(t)
	ctx := testCtx(t)
	name := uniqueName(t, c, "sandbox")
	sb, err := c.StartSandbox(ctx, SandboxSpec{
		Name:       name,
		Image:      pauseImage(t, c),
		Labels:     map[string]string{"ovn-docker.test": "sandbox"},
		Hostname:   "sbx",
		DNS:        []string{"192.0.2.53"},
		DNSSearch:  []string{"example.test"},
		ExtraHosts: []string{"gw.example.test:192.0.2.1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sb.Running || sb.Pid == 0 || sb.Name != name || sb.NetworkMode != "none" || sb.Labels["ovn-docker.test"] != "sandbox" {
		t.Fatalf("sandbox info %+v", sb)
	}
	nsPath := NetNSPath(sb.Pid)
	var nsSt, hostSt unix.Stat_t
	if err := unix.Stat(nsPath, &nsSt); err != nil {
		t.Fatalf("sandbox netns: %v", err)
	}
	if err := unix.Stat("/proc/self/ns/net", &hostSt); err != nil {
		t.Fatal(err)
	}
	if nsSt.Ino == hostSt.Ino {
		t.Fatal("sandbox shares the host's network namespace")
	}

	// Plumb something into the sandbox, as ovn-docker does with the container's veth.
	nsh, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ovndtest0"}, PeerName: "ovndtest1"}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("add veth in sandbox: %v", err)
	}

	out := runInSandbox(t, c, sb.ID, "ip link; echo ---; cat /etc/resolv.conf /etc/hosts /etc/hostname")
	for _, want := range []string{"ovndtest0", "ovndtest1", "nameserver 192.0.2.53", "example.test", "192.0.2.1\tgw.example.test", "sbx"} {
		if !strings.Contains(out, want) {
			t.Errorf("joined container output lacks %q:\n%s", want, out)
		}
	}
}

// TestSandboxReapsOrphansAndStopsCleanly checks the pause process as PID 1: orphans
// handed to it are reaped, and a stop ends it with exit code 0.
// Both builds of the binary: static, and dynamic with its libraries in the image.
func TestSandboxReapsOrphansAndStopsCleanly(t *testing.T) {
	t.Run("static", func(t *testing.T) { sandboxReapsAndStops(t, env.helper) })
	t.Run("dynamic", func(t *testing.T) { sandboxReapsAndStops(t, dynamicHelper(t)) })
}

func sandboxReapsAndStops(t *testing.T, exe string) {
	c := newClient(t)
	ctx := testCtx(t)
	img, err := c.EnsurePauseImage(ctx, exe)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := c.StartSandbox(ctx, SandboxSpec{Name: uniqueName(t, c, "sandbox"), Image: img})
	if err != nil {
		t.Fatal(err)
	}
	// The exec's process starts a child ("linger", which runs until SIGTERM) and exits;
	// the kernel hands the child to the sandbox's init as the process exits, before
	// Docker hears of the exit (exec_die, replayed from before the exec so it cannot be
	// missed).
	since := time.Now()
	ex, err := c.api.ContainerExecCreate(ctx, sb.ID, container.ExecOptions{Cmd: []string{pauseExe, "orphan"}})
	if err != nil {
		t.Fatal(err)
	}
	evCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	msgs, errs := c.api.Events(evCtx, events.ListOptions{
		Since:   fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		Filters: filters.NewArgs(filters.Arg("container", sb.ID), filters.Arg("event", "exec_die")),
	})
	if err := c.api.ContainerExecStart(ctx, ex.ID, container.ExecStartOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	for died := false; !died; {
		select {
		case m := <-msgs:
			died = m.Actor.Attributes["execID"] == ex.ID
		case err := <-errs:
			t.Fatalf("no exec_die event for the orphan maker: %v", err)
		}
	}
	stopEvents()
	if st, err := c.api.ContainerExecInspect(ctx, ex.ID); err != nil || st.Running || st.ExitCode != 0 {
		t.Fatalf("the orphan maker: %+v, %v; want it exited with 0", st, err)
	}
	kids := childrenOf(sb.Pid)
	if len(kids) != 1 || strings.HasSuffix(kids[0], ":Z") {
		t.Fatalf("children of the sandbox init %d: %v, want the running orphan", sb.Pid, kids)
	}
	pid, _ := strconv.Atoi(strings.Split(kids[0], ":")[0])

	// Once the orphan exits it is a zombie until its parent, the pause process, reaps it.
	// Nothing announces a reaping: look until it is gone, for as long as the test's time
	// lasts.
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("end the orphan %d: %v", pid, err)
	}
	for len(childrenOf(sb.Pid)) > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("children of the sandbox init %d: %v when the test's time was up, want none (the orphan reaped)", sb.Pid, childrenOf(sb.Pid))
		case <-time.After(10 * time.Millisecond):
		}
	}

	// No grace period: only the pause process's own exit on SIGTERM ends the stop.
	forever := -1
	if err := c.api.ContainerStop(ctx, sb.ID, container.StopOptions{Timeout: &forever}); err != nil {
		t.Fatal(err)
	}
	code, err := c.Wait(ctx, sb.ID)
	if err != nil || code != 0 {
		t.Fatalf("stopped sandbox exited %d, %v; want 0", code, err)
	}
	info, err := c.Inspect(ctx, sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Running || info.ExitCode != 0 {
		t.Fatalf("after stop: running %v exit code %d", info.Running, info.ExitCode)
	}
}

// childrenOf lists the processes (zombies included) whose parent is pid, with their state.
func childrenOf(pid int) []string {
	var kids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, ...
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids = append(kids, e.Name()+":"+fields[0])
		}
	}
	return kids
}

func TestStartSandboxRollsBack(t *testing.T) {
	c := newClient(t)
	ctx := testCtx(t)
	label := "ovn-docker.test.rollback=" + strconv.FormatInt(time.Now().UnixNano(), 36)
	k, v, _ := strings.Cut(label, "=")
	name := uniqueName(t, c, "sandbox")

	// The runtime cannot exec the command, so start fails after create succeeded.
	_, err := c.StartSandbox(ctx, SandboxSpec{Name: name, Image: pauseImage(t, c), Cmd: []string{"/no/such/binary"}, Labels: map[string]string{k: v}})
	if err == nil {
		t.Fatal("StartSandbox succeeded with a missing command")
	}
	if _, err := c.Inspect(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("sandbox left behind after a failed start: %v", err)
	}
	if left, err := c.List(ctx, label); err != nil || len(left) != 0 {
		t.Fatalf("containers left behind: %+v, %v", left, err)
	}

	// A failed create touches nothing that existed: here the name is taken.
	existing, err := c.StartSandbox(ctx, SandboxSpec{Name: name, Image: pauseImage(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartSandbox(ctx, SandboxSpec{Name: name, Image: pauseImage(t, c)}); err == nil {
		t.Fatal("StartSandbox reused a taken name")
	}
	if info, err := c.Inspect(ctx, name); err != nil || info.ID != existing.ID || !info.Running {
		t.Fatalf("existing sandbox disturbed: %+v, %v", info, err)
	}
}

func TestRemove(t *testing.T) {
	c := newClient(t)
	ctx := testCtx(t)
	name := uniqueName(t, c, "sleeper")
	id, _, err := c.Create(ctx, name, &container.Config{Image: env.busybox, Cmd: []string{"sleep", "300"}}, &container.HostConfig{NetworkMode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, id, false); err == nil {
		t.Fatal("Remove without force removed a running container")
	}
	if err := c.Remove(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Inspect(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Inspect after Remove = %v, want ErrNotFound", err)
	}
	if err := c.Remove(ctx, id, true); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if err := c.Remove(ctx, "ovnd-never-existed", false); err != nil {
		t.Fatalf("Remove of a container that never existed: %v", err)
	}
}

func TestInspectMissing(t *testing.T) {
	c := newClient(t)
	_, err := c.Inspect(testCtx(t), "ovnd-never-existed")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Inspect = %v, want ErrNotFound", err)
	}
}

func TestEnsureImage(t *testing.T) {
	c := newClient(t)
	ctx := testCtx(t)
	const prefix = `image "foo:1" not found locally and could not be pulled: `
	for _, policy := range []string{PullNever, PullMissing, ""} {
		err := c.EnsureImage(ctx, "foo:1", policy)
		if err == nil || !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("EnsureImage(foo:1, %q) = %v, want prefix %q", policy, err, prefix)
		}
	}
	// busybox:local exists only locally: success means no pull was tried...
	for _, policy := range []string{PullNever, PullMissing} {
		if err := c.EnsureImage(ctx, env.busybox, policy); err != nil {
			t.Errorf("EnsureImage(%s, %q) = %v", env.busybox, policy, err)
		}
	}
	// ...while "always" pulls, which cannot work here.
	err := c.EnsureImage(ctx, env.busybox, PullAlways)
	if err == nil || !strings.HasPrefix(err.Error(), `pull image "busybox:local"`) {
		t.Errorf("EnsureImage(%s, always) = %v, want a pull error", env.busybox, err)
	}
}

func TestWaitAndStream(t *testing.T) {
	c := newClient(t)
	ctx := testCtx(t)
	id, _, err := c.Create(ctx, uniqueName(t, c, "exit"),
		&container.Config{Image: env.busybox, Cmd: []string{"sh", "-c", "echo to-out; echo to-err >&2; exit 7"}},
		&container.HostConfig{NetworkMode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := c.Stream(ctx, id, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "to-out\n" || stderr.String() != "to-err\n" {
		t.Errorf("stdout %q stderr %q, want to-out and to-err", stdout.String(), stderr.String())
	}
	code, err := c.Wait(ctx, id)
	if err != nil || code != 7 {
		t.Fatalf("Wait = %d, %v; want 7", code, err)
	}
	info, err := c.Inspect(ctx, id)
	if err != nil || info.Running || info.ExitCode != 7 {
		t.Fatalf("Inspect = %+v, %v; want stopped with 7", info, err)
	}
}

func TestList(t *testing.T) {
	c := newClient(t)
	ctx := testCtx(t)
	key := "ovn-docker.test.list" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ids := map[string]string{}
	for _, v := range []string{"a", "b", ""} {
		labels := map[string]string{key: v}
		if v == "" {
			labels = nil
		}
		id, _, err := c.Create(ctx, uniqueName(t, c, "list"+v), &container.Config{Image: env.busybox, Cmd: []string{"sleep", "300"}, Labels: labels}, &container.HostConfig{NetworkMode: "none"})
		if err != nil {
			t.Fatal(err)
		}
		ids[v] = id
	}
	// One running, one never started: both count.
	if err := c.Start(ctx, ids["a"]); err != nil {
		t.Fatal(err)
	}
	all, err := c.List(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Info{}
	for _, info := range all {
		got[info.ID] = info
	}
	if len(got) != 2 || got[ids["a"]].ID == "" || got[ids["b"]].ID == "" {
		t.Fatalf("List(%s) = %+v, want the a and b containers", key, all)
	}
	if a := got[ids["a"]]; !a.Running || a.Pid == 0 || a.Labels[key] != "a" {
		t.Errorf("running container listed as %+v", a)
	}
	if b := got[ids["b"]]; b.Running || b.Pid != 0 {
		t.Errorf("created container listed as %+v", b)
	}
	one, err := c.List(ctx, key+"=b")
	if err != nil || len(one) != 1 || one[0].ID != ids["b"] {
		t.Fatalf("List(%s=b) = %+v, %v", key, one, err)
	}
}

func TestEvents(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	label := "ovn-docker.test.events=" + strconv.FormatInt(time.Now().UnixNano(), 36)
	k, v, _ := strings.Cut(label, "=")
	// The stream is set up after Events returns: the daemon replays what happened from
	// the call on, so no event below depends on how fast that is.
	c.eventsSince = time.Now()
	evs, errc := c.Events(ctx, label)

	// An unlabelled container's events must not come through.
	other, _, err := c.Create(ctx, uniqueName(t, c, "other"), &container.Config{Image: env.busybox, Cmd: []string{"true"}}, &container.HostConfig{NetworkMode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, other); err != nil {
		t.Fatal(err)
	}
	name := uniqueName(t, c, "events")
	id, _, err := c.Create(ctx, name, &container.Config{Image: env.busybox, Cmd: []string{"sh", "-c", "exit 3"}, Labels: map[string]string{k: v}}, &container.HostConfig{NetworkMode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, id, false); err != nil {
		t.Fatal(err)
	}

	for _, want := range []string{"start", "die", "destroy"} {
		select {
		case e := <-evs:
			if e.Action != want || e.ID != id || e.Name != name || e.Labels[k] != v {
				t.Fatalf("event %+v, want %s of %s", e, want, name)
			}
			if want == "die" && e.ExitCode != 3 {
				t.Errorf("die event exit code %d, want 3", e.ExitCode)
			}
		case err := <-errc:
			t.Fatalf("event stream ended before the %s event: %v", want, err)
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v, want context.Canceled", err)
	}
	if _, open := <-evs; open {
		t.Fatal("event channel still open")
	}
}
