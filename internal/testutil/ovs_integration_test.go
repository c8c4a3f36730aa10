//go:build integration

package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestStartOVS starts two instances side by side and checks that each works, that
// RestartDB keeps the data, and that cleanup leaves no process, tap or namespace.
func TestStartOVS(t *testing.T) {
	type leftover struct {
		netns string
		pids  []int
	}
	var left []leftover

	t.Run("instances", func(t *testing.T) {
		for _, name := range []string{"a", "b"} {
			o := StartOVS(t, "")
			o.AddBridge(t, "br-"+name)

			if got := o.Vsctl(t, "get", "Bridge", "br-"+name, "datapath_type"); got != "netdev" {
				t.Errorf("datapath_type = %q, want netdev", got)
			}
			// The netdev datapath made its taps in the instance's namespace only.
			for _, tap := range []string{"br-" + name, "ovs-netdev"} {
				if err := exec.Command("ip", "-n", o.NetNS, "link", "show", tap).Run(); err != nil {
					t.Errorf("tap %s missing in %s: %v", tap, o.NetNS, err)
				}
				if err := exec.Command("ip", "link", "show", "br-"+name).Run(); err == nil {
					t.Errorf("tap br-%s leaked into the host namespace", name)
				}
			}

			o.RestartDB()
			if got := o.Vsctl(t, "list-br"); got != "br-"+name {
				t.Errorf("after RestartDB list-br = %q, want br-%s", got, name)
			}
			// ovs-vswitchd has to come back to the restarted server for this to return.
			o.Vsctl(t, "set", "Bridge", "br-"+name, "external_ids:after-restart=1")

			left = append(left, leftover{netns: o.NetNS, pids: []int{
				readPid(t, filepath.Join(o.Dir, "ovsdb-server.pid")),
				readPid(t, filepath.Join(o.Dir, "ovs-vswitchd.pid")),
			}})
		}
	})

	if len(left) != 2 || left[0].netns == left[1].netns {
		t.Fatalf("want two instances in distinct namespaces, got %+v", left)
	}
	for _, l := range left {
		if _, err := os.Stat(filepath.Join("/run/netns", l.netns)); !os.IsNotExist(err) {
			t.Errorf("netns %s still exists after cleanup (stat err %v)", l.netns, err)
		}
		for _, pid := range l.pids {
			if err := syscall.Kill(pid, 0); err == nil {
				t.Errorf("daemon pid %d still running after cleanup", pid)
			}
		}
	}
}

// TestStartOVSSharedNetNS runs ovs-vswitchd in a namespace the test owns and checks
// that cleanup removes the taps but keeps the namespace and its other devices.
func TestStartOVSSharedNetNS(t *testing.T) {
	ns := "ovst-shared-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "add", "keep0", "type", "veth", "peer", "name", "keep1").CombinedOutput(); err != nil {
		t.Fatalf("add veth: %v: %s", err, out)
	}

	t.Run("instance", func(t *testing.T) {
		o := StartOVS(t, ns)
		if o.NetNS != ns {
			t.Fatalf("NetNS = %q, want %q", o.NetNS, ns)
		}
		o.AddBridge(t, "br0")
		if err := exec.Command("ip", "-n", ns, "link", "show", "br0").Run(); err != nil {
			t.Fatalf("tap br0 missing in %s: %v", ns, err)
		}
	})

	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("namespace %s gone after cleanup: %v: %s", ns, err, out)
	}
	links := string(out)
	for _, tap := range []string{"br0:", "ovs-netdev:"} {
		if strings.Contains(links, " "+tap) {
			t.Errorf("tap %s left in %s:\n%s", tap, ns, links)
		}
	}
	if !strings.Contains(links, " keep0@") {
		t.Errorf("cleanup removed the test's own veth:\n%s", links)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read pidfile: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("parse pidfile %s: %v", path, err)
	}
	return pid
}
