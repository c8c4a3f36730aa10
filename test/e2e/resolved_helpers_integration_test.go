//go:build integration

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/godbus/dbus/v5"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// resolvedVM is systemd-resolved running inside a VM, on a D-Bus of its own, as on a
// cloud image whose DHCP client hands its DNS servers to resolved (hack/resolved.sh
// unpacks Debian's).
type resolvedVM struct {
	vm  *testutil.VM
	bus string // DBUS_SYSTEM_BUS_ADDRESS=...
	dir string
}

func startResolved(t *testing.T, vm *testutil.VM) *resolvedVM {
	t.Helper()
	dir := os.Getenv("OVN_DOCKER_RESOLVED_DIR")
	if dir == "" {
		dir = "/var/cache/ovn-docker-resolved"
	}
	if _, err := os.Stat(filepath.Join(dir, "lib/systemd/systemd-resolved")); err != nil {
		t.Fatalf("systemd-resolved is not unpacked in %s: run hack/resolved.sh", dir)
	}
	u, err := user.Lookup("systemd-resolve")
	if err != nil {
		t.Fatalf("%v: run hack/resolved.sh", err)
	}
	// Not t.TempDir(): resolved drops to its own user, which must reach the bus and
	// the notify socket.
	tmp, err := os.MkdirTemp("", "ovn-docker-resolved-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(tmp, "bus")
	conf := filepath.Join(tmp, "bus.conf")
	// A system bus that lets root do anything: the test is root, as setup is.
	if err := os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=`+sock+`</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_type="method_call"/>
<allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/></policy></busconfig>
`), 0o644); err != nil {
		t.Fatal(err)
	}
	bus := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address")
	out, err := bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(); err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	t.Cleanup(func() { _ = bus.Process.Kill(); _ = bus.Wait() })
	// It prints its address once it listens.
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("dbus-daemon did not start: %v", err)
	}
	r := &resolvedVM{vm: vm, bus: "DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + sock, dir: dir}

	// resolved says READY=1 on NOTIFY_SOCKET once it holds its name on the bus.
	notify := filepath.Join(tmp, "notify")
	nl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	if err := os.Chmod(notify, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/systemd/resolve", 0o755); err != nil {
		t.Fatal(err)
	}
	// Its runtime folder is the VM's own (ip netns exec gives a mount namespace of its own).
	cmd := exec.Command("ip", "netns", "exec", vm.Name, "sh", "-c",
		fmt.Sprintf("mount -t tmpfs -o mode=0755,uid=%s,gid=%s tmpfs /run/systemd/resolve && exec %s/lib/systemd/systemd-resolved",
			u.Uid, u.Gid, dir))
	cmd.Env = append(os.Environ(), r.bus, "NOTIFY_SOCKET="+notify, "SYSTEMD_LOG_LEVEL=info")
	logf, err := os.Create(filepath.Join(tmp, "resolved.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logf.Close()
	})
	ready := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := nl.Read(buf)
			if err != nil {
				ready <- err
				return
			}
			if strings.Contains("\n"+string(buf[:n])+"\n", "\nREADY=1\n") {
				ready <- nil
				return
			}
		}
	}()
	// Its name on the bus is asked for after READY=1: watch for it, then look.
	conn, err := dbus.Connect("unix:path=" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	owners := make(chan *dbus.Signal, 8)
	conn.Signal(owners)
	if err := conn.AddMatchSignal(dbus.WithMatchInterface("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, "org.freedesktop.resolve1")); err != nil {
		t.Fatal(err)
	}
	owned := func() bool {
		var has bool
		err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.resolve1").Store(&has)
		return err == nil && has
	}
	for readySeen := false; !readySeen || !owned(); {
		select {
		case err := <-ready:
			if err != nil {
				t.Fatal(err)
			}
			readySeen = true
		case <-owners:
		case <-exited:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("systemd-resolved ended: %v\n%s", waitErr, b)
		}
	}
	return r
}

// ctl runs resolvectl inside the VM against this resolved.
func (r *resolvedVM) ctl(args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", r.vm.Name, filepath.Join(r.dir, "usr/bin/resolvectl")}, args...)...)
	cmd.Env = append(os.Environ(), r.bus)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (r *resolvedVM) mustCtl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := r.ctl(args...)
	if err != nil {
		t.Fatalf("resolvectl %s in %s: %v\n%s", strings.Join(args, " "), r.vm.Name, err, out)
	}
	return out
}

// dnsServer answers A queries for its names, on UDP port 53 of a VM.
type dnsServer struct {
	queries atomic.Int64
}

func serveDNS(t *testing.T, vm *testutil.VM, names map[string]netip.Addr) *dnsServer {
	t.Helper()
	netns, err := ns.GetNS("/run/netns/" + vm.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer netns.Close()
	var pc net.PacketConn
	// The socket belongs to the VM's namespace, whichever thread serves it.
	if err := netns.Do(func(ns.NetNS) error {
		var err error
		pc, err = (&net.ListenConfig{}).ListenPacket(context.Background(), "udp4", ":53")
		return err
	}); err != nil {
		t.Fatalf("DNS server in %s: %v", vm.Name, err)
	}
	t.Cleanup(func() { pc.Close() })
	s := &dnsServer{}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dnsmessage.Message
			if m.Unpack(buf[:n]) != nil || len(m.Questions) != 1 {
				continue
			}
			s.queries.Add(1)
			q := m.Questions[0]
			m.Header.Response, m.Header.Authoritative, m.Header.RecursionAvailable = true, true, true
			m.Answers, m.Additionals, m.Authorities = nil, nil, nil
			ip, ok := names[strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")]
			switch {
			case ok && q.Type == dnsmessage.TypeA:
				m.Answers = []dnsmessage.Resource{{
					Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 0},
					Body:   &dnsmessage.AResource{A: ip.As4()},
				}}
			case !ok:
				m.Header.RCode = dnsmessage.RCodeNameError
			}
			if out, err := m.Pack(); err == nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	return s
}
