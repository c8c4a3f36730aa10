package service

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// cid is a Docker container ID made of one repeated hex digit.
func cid(c byte) string { return strings.Repeat(string(c), 64) }

const self, livePID, deadPID = 100, 200, 300

func alive(pid int) bool { return pid == self || pid == livePID }

// att is an attachment of a run's sandbox in its process's namespace, at rest.
func att(id, owner, container, ifname string, pid int) *state.Attachment {
	return &state.Attachment{ID: id, Owner: owner, OwnerKind: state.OwnerSandbox, Container: container, IfName: ifname,
		NetNS: "/proc/42/ns/net", HostIf: "odv" + id, Phase: state.PhaseAttached, PID: pid}
}

func ids(atts []*state.Attachment) []string {
	var out []string
	for _, a := range atts {
		out = append(out, a.ID)
	}
	slices.Sort(out)
	return out
}

func TestRoleOf(t *testing.T) {
	for _, tc := range []struct {
		labels  map[string]string
		role    role
		sandbox string
	}{
		{map[string]string{LabelRole: "sandbox", LabelVM: "vif"}, roleSandbox, cid('a')},
		{map[string]string{LabelSandbox: cid('b'), LabelVM: "vif"}, roleContainer, cid('b')},
		{map[string]string{"com.example": "x"}, roleOther, ""},
		{nil, roleOther, ""},
	} {
		if r, sb := roleOf(cid('a'), tc.labels); r != tc.role || sb != tc.sandbox {
			t.Errorf("roleOf(%v) = %v %q, want %v %q", tc.labels, r, sb, tc.role, tc.sandbox)
		}
	}
}

func TestSandboxPath(t *testing.T) {
	run := att("a1", cid('a'), "", "eth0", 0)
	legacy := att("a2", cid('a'), "", "eth0", 0)
	legacy.OwnerKind = ""
	if !sandboxPath(run) || !sandboxPath(legacy) {
		t.Fatal("a run's attachment is not seen as one")
	}
	for what, change := range map[string]func(*state.Attachment){
		"a Docker endpoint":          func(a *state.Attachment) { a.OwnerKind = state.OwnerEndpoint },
		"a pool's":                   func(a *state.Attachment) { a.OwnerKind = state.OwnerPool },
		"an IPAM's":                  func(a *state.Attachment) { a.Owner, a.OwnerKind = "ipam:pool1", state.OwnerEndpoint },
		"a run in progress":          func(a *state.Attachment) { a.Owner = "run-123-abcd" },
		"Attach's, in a named netns": func(a *state.Attachment) { a.NetNS = "/var/run/netns/cni-1" },
		"one in no netns":            func(a *state.Attachment) { a.NetNS = "" },
	} {
		a := *run
		change(&a)
		if sandboxPath(&a) {
			t.Errorf("%s is taken for a run's attachment: %+v", what, a)
		}
	}
}

func TestPlanRemoval(t *testing.T) {
	sb, app, other := cid('a'), cid('c'), cid('e')
	for _, tc := range []struct {
		name          string
		atts          []*state.Attachment
		id, label     string
		started       bool
		owner         string
		release, busy []string
		removeSandbox bool
	}{
		{
			name: "user's container removed (docker rm -f): its sandbox's interfaces and the sandbox go",
			atts: []*state.Attachment{att("e0", sb, app, "eth0", 0), att("e1", sb, app, "eth1", 0), att("x", other, cid('d'), "eth0", 0)},
			id:   app, label: sb, started: true,
			owner: sb, release: []string{"e0", "e1"}, removeSandbox: true,
		},
		{
			name: "user's container removed, its start not seen (the agent came later): its interfaces name it",
			atts: []*state.Attachment{att("e0", sb, app, "eth0", 0)},
			id:   app, label: sb,
			owner: sb, release: []string{"e0"}, removeSandbox: true,
		},
		{
			name: "a --rm container that exited before its run labelled its interfaces: its start was seen",
			atts: []*state.Attachment{att("e0", sb, "", "eth0", 0)},
			id:   app, label: sb, started: true,
			owner: sb, release: []string{"e0"}, removeSandbox: true,
		},
		{
			name: "a run whose container did not start removes it itself, and undoes the rest",
			atts: []*state.Attachment{att("e0", sb, "", "eth0", 0)},
			id:   app, label: sb,
		},
		{
			name: "ovn-docker rm released them first, and removes the sandbox itself",
			atts: []*state.Attachment{att("x", other, cid('d'), "eth0", 0)},
			id:   app, label: sb, started: true,
			owner: sb,
		},
		{
			name: "a process works on one: left to it, and the sandbox with it",
			atts: []*state.Attachment{att("e0", sb, app, "eth0", livePID), att("e1", sb, app, "eth1", 0)},
			id:   app, label: sb, started: true,
			owner: sb, release: []string{"e1"}, busy: []string{"e0"},
		},
		{
			name: "this process works on one (the agent's own rm): left to it",
			atts: []*state.Attachment{att("e0", sb, app, "eth0", self)},
			id:   app, label: sb, started: true,
			owner: sb, busy: []string{"e0"},
		},
		{
			name: "one a dead process left is released too",
			atts: []*state.Attachment{att("e0", sb, app, "eth0", deadPID)},
			id:   app, label: sb, started: true,
			owner: sb, release: []string{"e0"}, removeSandbox: true,
		},
		{
			name:  "sandbox removed: its interfaces go",
			atts:  []*state.Attachment{att("e0", sb, app, "eth0", 0), att("e1", sb, "", "eth1", livePID)},
			id:    sb,
			owner: sb, release: []string{"e0"}, busy: []string{"e1"},
		},
		{
			name: "a container of no run: nothing",
			atts: []*state.Attachment{att("e0", sb, app, "eth0", 0)},
			id:   cid('f'),
		},
		{
			name: "Docker endpoints, pools and Attach's interfaces are not a run's",
			atts: func() []*state.Attachment {
				ep := att("ep", app, app, "eth0", 0)
				ep.OwnerKind = state.OwnerEndpoint
				pl := att("pl", app, app, "eth0", 0)
				pl.OwnerKind = state.OwnerPool
				cni := att("cni", app, app, "eth0", 0)
				cni.NetNS = "/var/run/netns/cni-1"
				return []*state.Attachment{ep, pl, cni}
			}(),
			id: app,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := planRemoval(tc.atts, tc.id, tc.label, tc.started, self, alive)
			if r.owner != tc.owner || !slices.Equal(ids(r.release), tc.release) || !slices.Equal(ids(r.busy), tc.busy) ||
				r.removeSandbox != tc.removeSandbox {
				t.Fatalf("plan: owner %q release %v busy %v remove sandbox %v; want %q %v %v %v", short(r.owner), ids(r.release),
					ids(r.busy), r.removeSandbox, short(tc.owner), tc.release, tc.busy, tc.removeSandbox)
			}
		})
	}
}

func TestStale(t *testing.T) {
	here := "/proc/42/ns/net"
	links := map[string]bool{"odvok": true, "odvmoved": true}
	ok := att("ok", cid('a'), "", "eth0", 0)
	moved := att("moved", cid('a'), "", "eth1", 0)
	moved.NetNS = "/proc/41/ns/net" // its sandbox's process changed
	reused := att("reused", cid('a'), "", "eth2", 0)
	// The same PID after a reboot, but the pair died with the old namespace.
	working := att("working", cid('a'), "", "eth3", livePID)
	working.NetNS = "/proc/41/ns/net"
	ready := att("ready", cid('a'), "", "eth4", 0)
	ready.Phase, ready.NetNS = state.PhaseReady, "/proc/41/ns/net"
	atts := []*state.Attachment{ok, moved, reused, working, ready}
	if got := ids(stale(atts, here, links)); !slices.Equal(got, []string{"moved", "reused"}) {
		t.Fatalf("stale %v, want moved and reused", got)
	}
	// Without the VM's links, only the namespaces tell.
	if got := ids(stale(atts, here, nil)); !slices.Equal(got, []string{"moved"}) {
		t.Fatalf("stale without links %v, want moved", got)
	}
}

func TestPlanReconcile(t *testing.T) {
	gone, orphan, busyRun, restarted, stopped, fine := cid('1'), cid('2'), cid('3'), cid('4'), cid('5'), cid('6')
	inProgress := cid('7')
	sandboxes := map[string]docker.Info{
		orphan:     {ID: orphan, Running: true, Pid: 42, Labels: map[string]string{LabelPID: "300"}},
		busyRun:    {ID: busyRun, Running: true, Pid: 42, Labels: map[string]string{LabelPID: "200"}},
		restarted:  {ID: restarted, Running: true, Pid: 43},
		stopped:    {ID: stopped},
		fine:       {ID: fine, Running: true, Pid: 42},
		inProgress: {ID: inProgress, Running: true, Pid: 44},
	}
	used := map[string]bool{restarted: true, stopped: true, fine: true, inProgress: true}
	ep := att("ep", cid('9'), "", "eth0", 0)
	ep.OwnerKind = state.OwnerEndpoint
	atts := []*state.Attachment{
		att("g0", gone, "", "eth0", 0), att("g1", gone, "", "eth1", 0),
		att("o0", orphan, "", "eth0", 0),
		att("b0", busyRun, "", "eth0", 0),
		att("r0", restarted, "", "eth0", 0),
		att("s0", stopped, "", "eth0", 0),
		att("f0", fine, "", "eth0", 0),
		att("p0", inProgress, "", "eth0", livePID), // a run plumbing it: not at rest
		ep, // the plugin's
	}
	links := map[string]bool{}
	for _, a := range atts {
		links[a.HostIf] = true
	}
	busy := func(sb docker.Info) bool { return sb.Labels[LabelPID] == fmt.Sprint(livePID) }
	w := planReconcile(atts, sandboxes, used, links, busy)
	if !slices.Equal(w.gone, []string{gone}) || !slices.Equal(w.orphans, []string{orphan}) || !slices.Equal(w.replug, []string{restarted}) {
		t.Fatalf("work: gone %v orphans %v replug %v; want %s, %s, %s", w.gone, w.orphans, w.replug, short(gone), short(orphan), short(restarted))
	}
}

func TestSandboxRestartPolicy(t *testing.T) {
	for _, tc := range []struct{ in, want container.RestartPolicyMode }{
		{container.RestartPolicyAlways, container.RestartPolicyAlways},
		{container.RestartPolicyUnlessStopped, container.RestartPolicyUnlessStopped},
		{container.RestartPolicyOnFailure, container.RestartPolicyUnlessStopped},
		{container.RestartPolicyDisabled, container.RestartPolicyUnlessStopped},
		{"", container.RestartPolicyUnlessStopped},
	} {
		if got := sandboxRestartPolicy(container.RestartPolicy{Name: tc.in, MaximumRetryCount: 3}); got.Name != tc.want {
			t.Errorf("the sandbox of a container with restart policy %q gets %q, want %q", tc.in, got.Name, tc.want)
		}
	}
}

func TestSerialOrdersPerKey(t *testing.T) {
	var q serial
	got := make(chan string, 10)
	release, a1Returned := make(chan struct{}), make(chan struct{})
	q.do("a", func() { defer close(a1Returned); <-release; got <- "a1" })
	q.do("a", func() {
		select {
		case <-a1Returned:
			got <- "a2"
		default:
			got <- "a2 while a1 ran"
		}
	})
	q.mu.Lock()
	waiting := len(q.pending["a"])
	q.mu.Unlock()
	if waiting != 1 {
		t.Fatalf("%d functions wait for key a, want a2 alone", waiting)
	}
	// Another key runs while a1 waits: b's function runs before a1 may end.
	q.do("b", func() { got <- "b1" })
	if first := <-got; first != "b1" {
		t.Fatalf("ran %s first; the other key's function must not wait", first)
	}
	close(release)
	if a1, a2 := <-got, <-got; a1 != "a1" || a2 != "a2" {
		t.Fatalf("key a ran %s then %s", a1, a2)
	}
	q.wait()
	// Functions given after the key's queue emptied run too.
	q.do("a", func() { got <- "a3" })
	q.wait()
	if a3 := <-got; a3 != "a3" {
		t.Fatalf("ran %s", a3)
	}
}
