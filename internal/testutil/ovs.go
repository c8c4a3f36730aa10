package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ovn-docker/ovn-docker/internal/testutil/scratch"
)

const (
	ovsSchema = "/usr/share/openvswitch/vswitch.ovsschema"
	// ovsNetdevTap is the tap device every netdev-datapath ovs-vswitchd creates once.
	ovsNetdevTap = "ovs-netdev"
	// ovsStopTimeout is how long a daemon gets to exit on SIGTERM before SIGKILL (on
	// cleanup only: no test's result depends on it).
	ovsStopTimeout = 5 * time.Second
	// ovsMaxDirLen keeps DIR/<bridge>.mgmt, which ovs-vswitchd creates per bridge,
	// below the 107-byte limit of unix socket paths.
	ovsMaxDirLen = 70
)

// OVS is a private Open vSwitch for one test: an ovsdb-server and an ovs-vswitchd
// with all their files in Dir and ovs-vswitchd in network namespace NetNS, so tests
// can run in parallel, each with its own. Bridges use the userspace (netdev)
// datapath because there is no openvswitch kernel module.
type OVS struct {
	Dir      string // database, sockets, pid and log files
	Endpoint string // "unix:<Dir>/db.sock", for ovs.Dial and ovs-vsctl --db
	NetNS    string // network namespace ovs-vswitchd runs in

	t        testing.TB
	ownNetNS bool
	// ctx bounds every wait on the daemons (see TimeoutContext); it outlives the test
	// body because Stop, a cleanup, still talks to them.
	ctx context.Context
	// died is closed when a daemon exits without being stopped, so that nothing waits
	// on a dead daemon; diedWhy says which one and how.
	died     chan struct{}
	diedOnce sync.Once
	diedWhy  string

	mu       sync.Mutex
	db       *ovsDaemon
	vswitchd *ovsDaemon
	bridges  []string
}

// ovsDaemon is one running daemon process.
type ovsDaemon struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process is reaped
	err    error         // exit status, valid after exited is closed
	// stopping is set before the daemon is stopped on purpose: its exit is no failure.
	stopping atomic.Bool
}

// StartOVS starts ovsdb-server and ovs-vswitchd for t and stops them (and removes
// what ovs-vswitchd left in the namespace) when t ends. ovs-vswitchd runs in network
// namespace netnsName; with "" a fresh namespace is made and deleted on cleanup. One
// netdev ovs-vswitchd per namespace: a second one would fight over ovs-netdev.
func StartOVS(t testing.TB, netnsName string) *OVS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("StartOVS needs root")
	}
	for _, bin := range []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("StartOVS: %s not installed: %v", bin, err)
		}
	}
	dir := ovsTempDir(t)
	o := &OVS{
		Dir:      dir,
		Endpoint: "unix:" + filepath.Join(dir, "db.sock"),
		NetNS:    netnsName,
		t:        t,
		died:     make(chan struct{}),
	}
	ctx, cancel := TimeoutContext(t)
	o.ctx = ctx
	t.Cleanup(cancel) // registered before Stop, so it runs after it
	if netnsName == "" {
		o.NetNS = ovsNewNetNS(t) // its cleanup runs after the one below
		o.ownNetNS = true
	}
	t.Cleanup(o.Stop)

	if out, err := exec.Command("ovsdb-tool", "create", o.dbFile(), ovsSchema).CombinedOutput(); err != nil {
		t.Fatalf("StartOVS: ovsdb-tool create: %v: %s", err, out)
	}
	o.StartDB()
	o.Vsctl(t, "--no-wait", "init")
	o.startVswitchd()
	return o
}

// ovsTempDir is a scratch.Dir (the daemons write into it: if one outlives the test, the
// cleanup names it) unless that path is too long for the sockets inside it.
func ovsTempDir(t testing.TB) string {
	dir := scratch.Dir(t)
	if len(dir) <= ovsMaxDirLen {
		return dir
	}
	dir, err := os.MkdirTemp("", "ovs")
	if err != nil {
		t.Fatalf("StartOVS: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("StartOVS cleanup: %v; %s", err, scratch.Why(dir))
		}
	})
	return dir
}

// ovsNewNetNS creates a uniquely named network namespace with lo up and deletes it
// when t ends.
func ovsNewNetNS(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("StartOVS: %v", err)
	}
	name := "ovst-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("StartOVS: ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("StartOVS cleanup: ip netns del %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("StartOVS: set lo up in %s: %v: %s", name, err, out)
	}
	return name
}

func (o *OVS) dbFile() string { return filepath.Join(o.Dir, "conf.db") }
func (o *OVS) dbSock() string { return filepath.Join(o.Dir, "db.sock") }

// env points everything the OVS tools would put under /var/run or /var/log at Dir.
func (o *OVS) env() []string {
	return append(os.Environ(), "OVS_RUNDIR="+o.Dir, "OVS_LOGDIR="+o.Dir, "OVS_DBDIR="+o.Dir)
}

// StartDB starts ovsdb-server on the existing database and waits for its socket.
// Call it from the test goroutine.
func (o *OVS) StartDB() {
	o.t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.db != nil && !o.db.done() {
		o.t.Fatalf("StartDB: ovsdb-server already running")
	}
	// A SIGKILLed server leaves its socket behind; binding would then fail.
	os.Remove(o.dbSock())
	d, err := o.start("ovsdb-server", []string{
		"ovsdb-server", o.dbFile(),
		"--remote=punix:" + o.dbSock(),
		"--pidfile=" + filepath.Join(o.Dir, "ovsdb-server.pid"),
		"--unixctl=" + filepath.Join(o.Dir, "ovsdb-server.ctl"),
		"--log-file=" + filepath.Join(o.Dir, "ovsdb-server.log"),
		"-vconsole:warn", // the log file has the rest; the console catches early errors
	})
	if err != nil {
		o.fatalf("StartDB: %v", err)
	}
	o.db = d
	// The socket accepts once the server is up; until then (or until it exits) poll it.
	for {
		c, err := net.Dial("unix", o.dbSock())
		if err == nil {
			c.Close()
			return
		}
		if d.done() {
			o.fatalf("StartDB: ovsdb-server exited: %v", d.err)
		}
		select {
		case <-o.ctx.Done():
			o.fatalf("StartDB: ovsdb-server runs but its socket still refuses (%v) when the test's time is up", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// StopDB stops ovsdb-server; ovs-vswitchd keeps running and reconnects after StartDB.
func (o *OVS) StopDB() {
	o.t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.db.stop(); err != nil {
		o.t.Errorf("StopDB: %v", err)
	}
}

// FreezeDB stops ovsdb-server's process (SIGSTOP) until the returned func resumes it
// (SIGCONT): a server too busy to accept connections or answer. The test's cleanup
// resumes it if the test did not.
func (o *OVS) FreezeDB(t testing.TB) (resume func()) {
	t.Helper()
	o.mu.Lock()
	p := o.db.cmd.Process
	o.mu.Unlock()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("freeze ovsdb-server: %v", err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if err := p.Signal(syscall.SIGCONT); err != nil {
				t.Errorf("resume ovsdb-server: %v", err)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}

// RestartDB stops ovsdb-server and starts it again on the same database and socket,
// as a package upgrade or a crash would. Call it from the test goroutine.
func (o *OVS) RestartDB() {
	o.t.Helper()
	o.StopDB()
	o.StartDB()
}

func (o *OVS) startVswitchd() {
	o.t.Helper()
	o.mu.Lock()
	d, err := o.start("ovs-vswitchd", []string{
		"ip", "netns", "exec", o.NetNS, // ip execs ovs-vswitchd in place, so the pid is its own
		"ovs-vswitchd", o.Endpoint,
		"--disable-system", // no kernel datapath on this machine; netdev only
		"--pidfile=" + filepath.Join(o.Dir, "ovs-vswitchd.pid"),
		"--unixctl=" + filepath.Join(o.Dir, "ovs-vswitchd.ctl"),
		"--log-file=" + filepath.Join(o.Dir, "ovs-vswitchd.log"),
		"-vconsole:warn",
	})
	if err != nil {
		o.mu.Unlock()
		o.fatalf("start ovs-vswitchd: %v", err)
	}
	o.vswitchd = d
	o.mu.Unlock()
	// ovs-vsctl waits for ovs-vswitchd to apply a change, which proves it is up and
	// connected (and gives up when a daemon exits); the value only has to differ from
	// the last one.
	if _, err := o.vsctl("set", "Open_vSwitch", ".", "external_ids:testutil-started="+strconv.FormatInt(time.Now().UnixNano(), 10)); err != nil {
		o.fatalf("ovs-vswitchd did not come up: %v", err)
	}
}

// start launches argv with its output in Dir/<name>.out.
func (o *OVS) start(name string, argv []string) (*ovsDaemon, error) {
	out, err := os.OpenFile(filepath.Join(o.Dir, name+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = o.env()
	cmd.Dir = o.Dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &ovsDaemon{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		out.Close()
		close(d.exited)
		if !d.stopping.Load() {
			o.diedOnce.Do(func() {
				o.diedWhy = fmt.Sprintf("%s exited: %v", name, d.err)
				close(o.died)
			})
		}
	}()
	return d, nil
}

// Died is closed when ovsdb-server or ovs-vswitchd exits without being stopped: a test
// that polls something the daemons should bring about stops waiting then.
func (o *OVS) Died() <-chan struct{} { return o.died }

// DiedError says which daemon died and how, with the end of the logs; nil while both run
// (or were stopped on purpose).
func (o *OVS) DiedError() error {
	select {
	case <-o.died:
		return fmt.Errorf("%s\n%s", o.diedWhy, o.logTails())
	default:
		return nil
	}
}

func (d *ovsDaemon) done() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// stop terminates the daemon, politely first; a nil or exited daemon is fine.
func (d *ovsDaemon) stop() error {
	if d == nil || d.done() {
		return nil
	}
	d.stopping.Store(true)
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", d.name, err)
	}
	select {
	case <-d.exited:
		return nil
	case <-time.After(ovsStopTimeout):
	}
	if err := d.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", d.name, err)
	}
	<-d.exited
	return nil
}

// AddBridge creates a netdev bridge and waits until ovs-vswitchd has it.
func (o *OVS) AddBridge(t testing.TB, name string) {
	t.Helper()
	o.Vsctl(t, "add-br", name, "--", "set", "Bridge", name, "datapath_type=netdev")
	o.mu.Lock()
	o.bridges = append(o.bridges, name)
	o.mu.Unlock()
}

// Vsctl runs ovs-vsctl against this instance and returns its trimmed output. Without
// --no-wait among args, changes wait for ovs-vswitchd, for as long as it takes: ovs-vsctl
// is stopped only when a daemon dies or the test's time is up.
func (o *OVS) Vsctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := o.vsctl(args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, o.logTails())
	}
	return out
}

func (o *OVS) vsctl(args ...string) (string, error) {
	// No --timeout: ovs-vsctl waits for the database and ovs-vswitchd as long as it takes.
	return o.run("ovs-vsctl", append([]string{"--db=" + o.Endpoint}, args...)...)
}

// Appctl runs ovs-appctl against this instance's ovs-vswitchd and returns its trimmed
// output; like Vsctl it is stopped only when a daemon dies or the test's time is up.
func (o *OVS) Appctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := o.run("ovs-appctl", append([]string{"-t", filepath.Join(o.Dir, "ovs-vswitchd.ctl")}, args...)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, o.logTails())
	}
	return out
}

// run runs one of the OVS tools until it ends, a daemon dies or o.ctx ends.
func (o *OVS) run(tool string, args ...string) (string, error) {
	ctx, cancel := context.WithCancel(o.ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-o.died:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() { cancel(); <-watched }()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Env = o.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		why := ""
		if ctx.Err() != nil {
			why = " (the test's time is up)"
			if o.DiedError() != nil {
				why = " (" + o.diedWhy + ")"
			}
		}
		return "", fmt.Errorf("%s %s: %v%s: %s", tool, strings.Join(args, " "), err, why, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Stop kills both daemons and deletes the tap devices a netdev ovs-vswitchd leaves in
// its namespace (one per bridge plus ovs-netdev). It runs on cleanup; calling it
// earlier is fine.
func (o *OVS) Stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	taps := append([]string{ovsNetdevTap}, o.bridges...)
	if o.db != nil && !o.db.done() {
		// Bridges made behind AddBridge's back leave taps too.
		if out, err := o.vsctl("--no-wait", "list-br"); err == nil {
			taps = append(taps, strings.Fields(out)...)
		}
	}
	if err := o.vswitchd.stop(); err != nil {
		o.t.Errorf("OVS.Stop: %v", err)
	}
	if err := o.db.stop(); err != nil {
		o.t.Errorf("OVS.Stop: %v", err)
	}
	if err := ovsDeleteTaps(o.NetNS, taps); err != nil {
		o.t.Errorf("OVS.Stop: %v", err)
	}
}

// ovsDeleteTaps removes the named tap devices from namespace nsName. Only taps go:
// in a shared namespace a device of the same name may be someone else's veth.
func ovsDeleteTaps(nsName string, names []string) error {
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open netns %s: %w", nsName, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsName, err)
	}
	defer h.Close()
	slices.Sort(names)
	var errs []error
	for _, name := range slices.Compact(names) {
		l, err := h.LinkByName(name)
		if err != nil {
			continue // never created, or gone with its daemon
		}
		if l.Type() != "tuntap" {
			continue
		}
		if err := h.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete tap %s in %s: %w", name, nsName, err))
		}
	}
	return errors.Join(errs...)
}

// fatalf fails the test with the end of every daemon log, the only place that says
// why an OVS daemon did not come up.
func (o *OVS) fatalf(format string, args ...any) {
	o.t.Helper()
	o.t.Fatalf(format+"\n%s", append(args, o.logTails())...)
}

// logTails returns the last lines of the daemons' logs and console output.
func (o *OVS) logTails() string {
	var b strings.Builder
	for _, f := range []string{"ovsdb-server.log", "ovsdb-server.out", "ovs-vswitchd.log", "ovs-vswitchd.out"} {
		data, err := os.ReadFile(filepath.Join(o.Dir, f))
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		fmt.Fprintf(&b, "--- %s (tail) ---\n%s\n", f, strings.Join(lines, "\n"))
	}
	return b.String()
}

// RestartVswitchd stops ovs-vswitchd and starts it again, as a crash or an upgrade
// would: every OpenFlow flow is lost, the database keeps the bridges and ports. Call it
// from the test goroutine.
func (o *OVS) RestartVswitchd() {
	o.t.Helper()
	o.mu.Lock()
	err := o.vswitchd.stop()
	o.mu.Unlock()
	if err != nil {
		o.t.Errorf("stop ovs-vswitchd: %v", err)
	}
	o.startVswitchd()
}
