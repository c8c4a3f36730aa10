//go:build integration

package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestRunInteractive: -i gives the container ovn-docker's stdin (its end closes the
// container's), -it a terminal of the right size, in raw mode, as docker run does; the
// exit code is the container's and --rm leaves nothing.
func TestRunInteractive(t *testing.T) {
	t.Parallel()
	s := testutil.LoadStack(t)
	vm := s.TenantVMs(t, 1)[0]
	ls := tenantNetwork(t, vm, "interactive-"+vm.Name)
	t.Cleanup(func() { cleanVM(t, vm) })

	t.Run("-i", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := vm.Command(ctx, bin, "--standalone", "--network", ls, "run", "-i", "--rm", "busybox:local", "sh")
		cmd.Stdin = strings.NewReader("echo from-stdin; ip -o -4 addr show eth0 | wc -l\nexit 7\n")
		out, err := cmd.Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 7 || !strings.Contains(string(out), "from-stdin\n1\n") {
			t.Fatalf("exit %v, output %q: want the script's output (one IPv4 address on eth0) and exit 7", err, out)
		}
		assertClean(t, s, vm)
	})

	t.Run("-it through the agent", func(t *testing.T) {
		startPlugin(t, vm)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := vm.Command(ctx, bin, "--network", ls, "run", "-it", "--rm", "busybox:local", "sh")
		tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 101})
		if err != nil {
			t.Fatal(err)
		}
		// Whatever happens below: the run ends, and its container (gone with --rm, Docker
		// removes it) has its ports released by the agent, so before the agent stops.
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			tty.Close()
			waitUntil(t, "the -it container released", func() (bool, string) {
				f := measure(t, s, vm)
				return f.empty(), fmt.Sprintf("%+v", f)
			})
		})
		lines := make(chan string, 100)
		go func() {
			sc := bufio.NewScanner(tty)
			for sc.Scan() {
				lines <- strings.TrimRight(sc.Text(), "\r")
			}
			close(lines)
		}()
		// The shell's answers, not its echo of what was typed: the sums are computed. The
		// size reaches the terminal just after the start (with docker run too): the shell
		// waits for it.
		// (busybox's stty size exits 0 even when it finds no size.)
		if _, err := tty.WriteString(`tty; s=; while [ -z "$s" ] || [ "$s" = "0 0" ]; do s=$(stty size 2>/dev/null); done; echo "size $s"; echo $((6*7))-tty; exit 3` + "\r"); err != nil {
			t.Fatal(err)
		}
		var got []string
		seen := func(want string) bool {
			for _, l := range got {
				if l == want {
					return true
				}
			}
			return false
		}
		for l := range lines {
			got = append(got, l)
			if seen("42-tty") {
				break
			}
		}
		if !seen("/dev/pts/0") || !seen("size 33 101") || !seen("42-tty") {
			t.Fatalf("want a terminal (/dev/pts/0) of 33x101 and 42-tty; got %q", got)
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("exit %v, want 3", err)
		}
	})
	assertClean(t, s, vm)
}
