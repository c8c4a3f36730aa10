#!/usr/bin/env bash
# hack/test.sh: every test of the project, on a fresh machine or a developer's.
# Installs what is missing, brings the sandbox stack up (hack/stack.sh), runs the static
# checks, the unit tests, the integration tests (own namespaces, own OVS and dockerd) and the
# end-to-end tests against the stack, then tears the stack down. The stack's logs are printed
# when something failed. Exits non-zero on any failure.
#
#   OVN_DOCKER_KEEP_STACK=1   leave the stack running afterwards
#   OVN_DOCKER_REUSE_STACK=1  test on a stack that is already up (default: start it afresh)
#   OVN_DOCKER_TEST_SCOPE=quick  all but the longest crash, outage and scale tests
#   OVN_DOCKER_TEST_RUN=RE   only run tests matching RE (go test -run)
#   OVN_DOCKER_TEST_LOGS=DIR  where failed steps' output and the e2e verbose logs are kept
#                            (default /var/log/ovn-docker-tests, root only)
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
export OVN_DOCKER_STACK_DIR=${OVN_DOCKER_STACK_DIR:-/var/lib/ovn-docker-stack}
export GOFLAGS=${GOFLAGS:-}
run_re=${OVN_DOCKER_TEST_RUN:-}
runflag=()
[ -n "$run_re" ] && runflag=(-run "$run_re")

failed=()
t_all=$SECONDS
# What failed is said again at the very end, after the stack's logs: a CI page that shows
# only the last lines of the output then still shows which test failed and why.
summary=$(mktemp)
# The whole output of each failed step, and the end-to-end steps' verbose logs, are kept on
# the machine too: the end of a CI page shows only so much.
logs_dir=${OVN_DOCKER_TEST_LOGS:-/var/log/ovn-docker-tests}
mkdir -p -m 0700 "$logs_dir" && rm -f "$logs_dir"/*.log
keep_log() { # keep_log NAME FILE: keeps a copy of FILE as NAME's log; prints its path
	local dest
	dest=$logs_dir/$(tr -c 'A-Za-z0-9_.-' '-' <<<"$1" | sed 's/-*$//').log
	cp "$2" "$dest" 2>/dev/null && chmod 0600 "$dest" && echo "$dest"
}
# failures FILE: the lines of go test's output that say what failed, each test's message
# with the lines that continue it (go test indents them further), and the shell's errors.
failures() {
	awk 'BEGIN { cont = -1 }
		/--- FAIL|^FAIL|panic:/ { print; cont = -1; next }
		/^[ \t]+[A-Za-z0-9_]+\.go:[0-9]+:/ {
			match($0, /^[ \t]+/); cont = RLENGTH; n = 0
			print substr($0, 1, 600); next
		}
		cont >= 0 && match($0, /^[ \t]+/) && RLENGTH > cont {
			if (++n <= 12) print substr($0, 1, 600)
			next
		}
		{ cont = -1 }
		/^[a-z].*(failed|would change|error)/ { print }
	' "$1"
}
step() { # step NAME CMD...: runs one step, records its result and time
	local name=$1 t0=$SECONDS out
	shift
	echo "=== $name"
	out=$(mktemp)
	if "$@" 2>&1 | tee "$out"; then
		echo "--- ok   $name ($((SECONDS - t0)) s)"
	else
		echo "--- FAIL $name ($((SECONDS - t0)) s)"
		failed+=("$name")
		{
			echo "--- FAIL $name: what it said last about failures (all of it: $(keep_log "$name" "$out"))"
			failures "$out" | tail -n 100
		} >>"$summary"
	fi
	rm -f "$out"
}

finish() {
	if [ ${#failed[@]} -gt 0 ]; then
		echo
		echo "=== stack status and logs (something failed)"
		hack/stack.sh status || true
		STACK_LOG_LINES=60 hack/stack.sh logs || true
	fi
	if [ "${OVN_DOCKER_KEEP_STACK:-}" != 1 ]; then
		hack/stack.sh down || failed+=("stack down")
	fi
	echo
	if [ ${#failed[@]} -gt 0 ]; then
		echo "=== what failed, again"
		tail -n 200 "$summary"
		rm -f "$summary"
		echo "FAILED: ${failed[*]} (total $((SECONDS - t_all)) s)"
		exit 1
	fi
	rm -f "$summary"
	echo "PASSED (total $((SECONDS - t_all)) s)"
}
trap finish EXIT

gofmt_clean() {
	local out
	out=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
	[ -z "$out" ] || { echo "gofmt would change: $out"; return 1; }
}

# What needs no stack runs while the stack comes up and while the first end-to-end tests,
# which mostly wait for stopped services to come back, run: the machine's CPUs are the
# budget, and most of the stack's bring-up is spent waiting for apt, Keystone and Neutron.
offline_checks() {
	step "go mod download" go mod download
	step "gofmt" gofmt_clean
	# With the integration tag every file is vetted: no file is built only without it.
	step "go vet" go vet -tags integration ./...
	# The unit tests' binaries are built here, in the gaps; they run at the end, in front
	# (unit_tests), where nothing else competes for the CPUs.
	step "unit tests (build)" go test -race -count=1 -run '^$' ./...
	step "fuzz (brief)" fuzz_briefly
}
# The unit tests run alone, after the end-to-end tests: they do not slow those down, and
# nothing starves them. They depend on no machine's speed either (issue: CI green every
# time), so a busy machine makes them slower, never red.
unit_tests() {
	step "unit tests" go test -race -count=1 -timeout 15m "${runflag[@]}" ./...
}
# Every fuzz target of the project, briefly. The budget is a count of inputs, not a
# duration: go1.26's fuzzing coordinator can report its own -fuzztime deadline as a
# failure (golang/go#75804, fixed in go1.27) on a loaded machine.
fuzz_briefly() {
	local rc=0 file pkg fn
	while IFS=: read -r file fn; do
		pkg=./$(dirname "$file")
		fn=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$fn")
		go test -run '^$' -fuzz "^$fn\$" -fuzztime "${OVN_DOCKER_FUZZTIME:-5000x}" "$pkg" >/tmp/fuzz.$$ 2>&1 ||
			{ echo "fuzz $pkg $fn failed:"; tail -20 /tmp/fuzz.$$; rc=1; }
	done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*(f \*testing.F)' internal cmd 2>/dev/null)
	rm -f /tmp/fuzz.$$
	return $rc
}

# in_background NAME FUNC...: runs steps in the background; collect NAME joins them.
declare -A bg_pid bg_log bg_failed
in_background() {
	local name=$1
	shift
	bg_log[$name]=$(mktemp) bg_failed[$name]=$(mktemp)
	(
		# What runs in the background yields the CPUs to what runs in front.
		renice -n 19 -p "$BASHPID" >/dev/null
		failed=()
		"$@"
		printf '%s\n' "${failed[@]}" >"${bg_failed[$name]}"
	) >"${bg_log[$name]}" 2>&1 &
	bg_pid[$name]=$!
}
collect() {
	local name=$1 f
	[ -n "${bg_pid[$name]:-}" ] || return 0
	wait "${bg_pid[$name]}"
	cat "${bg_log[$name]}"
	while read -r f; do [ -n "$f" ] && failed+=("$f"); done <"${bg_failed[$name]}"
	rm -f "${bg_log[$name]}" "${bg_failed[$name]}"
	unset "bg_pid[$name]"
}

# e2e NAME GO-TEST-ARGS...: end-to-end tests, verbose to a log; prints each test's time,
# and the whole log when one failed. The verbose log is kept either way: the figures the
# tests measure (fail-over times, losses, rates) are in it.
e2e() {
	local name=$1 log rc
	shift
	log=$(mktemp)
	go test -count=1 -tags integration -v "$@" ./test/... >"$log" 2>&1
	rc=$?
	grep -E '^--- (PASS|FAIL|SKIP)' "$log" | sort -t'(' -k2 -rn | sed 's/^/    /'
	echo "the whole verbose log: $(keep_log "e2e-$name-verbose" "$log")"
	if [ $rc -ne 0 ]; then
		# Everything the tests said, without the noise; a timeout's goroutine dump cut short.
		grep -vE '^=== (RUN|PAUSE|CONT)|^\s*--- PASS' "$log" |
			awk '/^goroutine [0-9]+ \[/ { if (++g > 10) skip = 1 } /^(FAIL|ok)\s/ { skip = 0 } !skip'

	fi
	rm -f "$log"
	return $rc
}
# The integration tests of packages that use the sandbox stack (testutil.LoadStack), and of
# those that make their own namespaces, OVS and dockerd and need only the installed packages.
stack_pkgs() {
	grep -rl --include='*integration_test.go' 'testutil\.LoadStack' internal | xargs -r -n1 dirname | sort -u | sed 's|^|./|'
}
local_pkgs() {
	comm -23 <(grep -rl --include='*integration_test.go' '^//go:build integration' internal | xargs -r -n1 dirname | sort -u | sed 's|^|./|') <(stack_pkgs)
}
integration() { # integration local|stack
	local pkgs
	mapfile -t pkgs < <("$1"_pkgs)
	[ ${#pkgs[@]} -gt 0 ] || return 0
	step "integration tests ($1)" go test -race -count=1 -timeout 15m -tags integration "${runflag[@]}" "${pkgs[@]}"
}

# Tests start from a stack of their own: one left by an earlier (perhaps killed) run may
# hold its containers and ports. OVN_DOCKER_REUSE_STACK=1 keeps a running one.
if [ "${OVN_DOCKER_REUSE_STACK:-}" != 1 ]; then hack/stack.sh down >/dev/null 2>&1 || true; fi
# The static checks yield the CPUs to the stack and the end-to-end tests: they finish in
# the gaps, while the tests wait for services that restart.
in_background offline offline_checks
# containerd, crictl and runc for the CNI tests build from the module proxy meanwhile (once
# per machine: hack/cri.sh keeps them).
in_background cri step "CRI runtime (build)" hack/cri.sh install
# The cloud's shape: three hypervisors (Geneve between them, the VMs spread), OVN's
# databases as 3-member Raft clusters, two Neutron API workers. Every end-to-end test runs
# on it: containers in VMs on different chassis talk through real tunnels.
step "stack up" hack/stack.sh up --vms 9 --tenants a,a,a,a,a,a,a,a,b --docker --hypervisors 3
if [[ " ${failed[*]} " == *" stack up "* ]]; then
	collect offline
	collect cri
	exit 1
fi
hack/stack.sh status
# The packages (nfpm, lintian, the unit under systemd-analyze) build while the end-to-end
# tests run: after the stack's apt, whose lock their lintian install would otherwise meet.
in_background packages step "packages (.deb, .rpm, lintian, systemd-analyze verify)" hack/package-check.sh
# A registry for the pulls with credentials (Debian's, unpacked: no service on Keystone's port).
step "registry (download)" hack/registry.sh
# systemd-resolved for setup's DNS move (Debian's, unpacked: it would take the machine's resolv.conf).
step "systemd-resolved (download)" hack/resolved.sh
# The outages of shared services (Neutron, Keystone, the OVN NB, OVN's leaders) first, alone: every other
# test needs them. Then the other end-to-end tests side by side, then the integration tests.
#
# OVN_DOCKER_TEST_SCOPE=quick leaves out the longest tests of crashes, outages and scale,
# which stop shared services or load the one Neutron for minutes: the shared-service
# outages, the kill after every step of run, and the simultaneous runs. CI runs them all.
serial='^(TestOutage(NeutronDown|KeystoneDown|OVNNBRestarted)|TestOVNLeaderFailover)$'
skip=$serial
quick=
if [ "${OVN_DOCKER_TEST_SCOPE:-all}" = quick ]; then
	quick=1
	skip='^(TestOutage(NeutronDown|KeystoneDown|OVNNBRestarted)|TestOVNLeaderFailover|TestKilledRunThenGC|TestConcurrentRuns)$'
fi
run_e2e=()
[ -n "$run_re" ] && run_e2e=(-run "$run_re")
# The integration tests that need no stack run beside the outages, which mostly wait.
in_background local integration local
if [ -z "$quick" ] && { [ -z "$run_re" ] || grep -qE 'Outage|LeaderFailover' <<<"$run_re"; }; then
	step "end-to-end tests: shared-service outages" e2e serial -timeout 10m -run "$serial"
fi
collect local
collect cri
# The setup test runs ovn-docker as the package installs it.
collect packages
if deb=$(ls dist/ovn-docker_*.deb 2>/dev/null | head -1) && [ -n "$deb" ]; then export OVN_DOCKER_E2E_DEB=$PWD/$deb; fi
step "end-to-end tests" e2e main -timeout 28m -parallel "${OVN_DOCKER_E2E_PARALLEL:-3}" -skip "$skip" "${run_e2e[@]}"
integration stack
collect offline
unit_tests
