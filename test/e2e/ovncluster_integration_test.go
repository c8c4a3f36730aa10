//go:build integration

package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// TestOVNLeaderFailover stops the leader of OVN's Northbound cluster, then the leader of
// its Southbound cluster, while containers are attached and detached: every run and rm
// either succeeds or fails in one clear line, nothing is left, and the data plane of a
// running container never stops (its continuous ping gets replies while each leader is
// down; the losses are reported).
func TestOVNLeaderFailover(t *testing.T) {
	s := testutil.LoadStack(t)
	if n, _ := strconv.Atoi(s.Env["STACK_OVN_MEMBERS"]); n < 3 {
		t.Skip("OVN's databases run standalone here: hack/stack.sh up --ovn-cluster 3 makes them Raft clusters")
	}
	vms := s.TenantVMs(t, 2)
	a, b := vms[0], vms[1]
	ls := tenantNetwork(t, a, uniq("raft"))
	for _, vm := range vms {
		t.Cleanup(func() { cleanVM(t, vm) })
	}
	peer := runBox(t, b, uniq("raft-peer"), []string{"--network", ls}, nil)
	pinger := runBox(t, a, uniq("raft-ping"), []string{"--network", ls}, nil, "ping", "-i", "0.2", peer.ip().String())
	replies := func() int {
		out, _ := dockerIn(a, "logs", pinger.name)
		return strings.Count(out, " bytes from ")
	}
	waitUntil(t, "the first ping reply", func() (bool, string) { return replies() > 0, "none yet" })

	// The churn: workers run and remove containers until the kills are over and at least
	// 20 containers went through; each outcome is kept for the checks below.
	type outcome struct {
		op  string
		res result
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		ok       int
		done     = make(chan struct{})
		wg       sync.WaitGroup
	)
	okCount := func() int { mu.Lock(); defer mu.Unlock(); return ok }
	record := func(op string, r result) {
		mu.Lock()
		defer mu.Unlock()
		outcomes = append(outcomes, outcome{op, r})
		if r.code == 0 && op == "rm" {
			ok++
		}
	}
	var started int
	next := func() (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-done:
			if started >= 20 {
				return "", false
			}
		default:
		}
		started++
		return uniq(fmt.Sprintf("raft-churn-%d", started)), true
	}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				name, more := next()
				if !more {
					return
				}
				r := ovnDocker(t, a, nil, "--timeout", "2m", "--network", ls, "run", "-d", "--name", name, "busybox:local", "sleep", "600")
				record("run", r)
				if r.code != 0 {
					continue
				}
				record("rm", ovnDocker(t, a, nil, "rm", "-f", name))
			}
		}()
	}
	stopWorkers := sync.OnceFunc(func() { close(done); wg.Wait() })
	t.Cleanup(stopWorkers)

	for _, db := range []string{"nb", "sb"} {
		before := okCount()
		waitUntil(t, "two more containers through before the "+db+" leader goes", func() (bool, string) {
			return okCount() >= before+2, fmt.Sprintf("%d through", okCount()-before)
		})
		stopped := strings.TrimSpace(stackOut(t, "stop", "ovn-"+db+"-leader"))
		t.Logf("stopped the %s leader: %s", strings.ToUpper(db), stopped)
		at, seen := okCount(), replies()
		took := waitUntil(t, "two containers through and ping replies while "+stopped+" is down", func() (bool, string) {
			return okCount() >= at+2 && replies() > seen, fmt.Sprintf("%d containers through, %d new replies", okCount()-at, replies()-seen)
		})
		t.Logf("%s down: two containers attached and detached and the ping answered within %s", stopped, took.Round(100*time.Millisecond))
		stack(t, "start", "ovn-"+db)
	}
	stopWorkers()

	// Every outcome is a success or one clear line.
	var runs, runsOK, rms, rmsOK int
	for _, o := range outcomes {
		if o.op == "run" {
			runs++
		} else {
			rms++
		}
		if o.res.code == 0 {
			if o.op == "run" {
				runsOK++
			} else {
				rmsOK++
			}
			continue
		}
		expectOneLine(t, o.res)
		t.Logf("%s failed cleanly: %s", o.op, strings.TrimSpace(o.res.stderr))
	}
	t.Logf("runs: %d of %d succeeded; rm: %d of %d", runsOK, runs, rmsOK, rms)
	if runs < 20 {
		t.Fatalf("only %d runs", runs)
	}

	// The ping's own count: it ends with its statistics on SIGINT.
	if out, err := dockerIn(a, "kill", "-s", "INT", pinger.name); err != nil {
		t.Fatalf("stop the ping: %v: %s", err, out)
	}
	var tx, rx int
	waitUntil(t, "the ping's statistics", func() (bool, string) {
		out, _ := dockerIn(a, "logs", pinger.name)
		m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) packets received`).FindStringSubmatch(out)
		if m == nil {
			return false, "not yet"
		}
		tx, _ = strconv.Atoi(m[1])
		rx, _ = strconv.Atoi(m[2])
		return true, ""
	})
	t.Logf("continuous ping across both fail-overs: %d sent, %d answered, %d lost", tx, rx, tx-rx)

	cleanVM(t, a)
	if r := ovnDocker(t, a, nil, "gc", "--grace", "1s"); r.code != 0 {
		t.Fatalf("gc: %s", r)
	}
	assertClean(t, s, a)
}

// stackOut runs hack/stack.sh and returns what it printed on its standard output.
func stackOut(t *testing.T, args ...string) string {
	t.Helper()
	var stderr strings.Builder
	cmd := exec.Command("../../hack/stack.sh", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("stack.sh %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}
