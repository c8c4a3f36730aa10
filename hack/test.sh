#!/usr/bin/env bash
# hack/test.sh: every test of the project, on a fresh machine or a developer's.
# Installs what is missing, brings the sandbox stack up (hack/stack.sh), runs the static
# checks, the unit tests, the integration tests (own namespaces, own OVS and dockerd) and the
# end-to-end tests against the stack, then tears the stack down. The stack's logs are printed
# when something failed. Exits non-zero on any failure.
#
#   OVN_DOCKER_KEEP_STACK=1   leave the stack running afterwards
#   OVN_DOCKER_REUSE_STACK=1  test on a stack that is already up (default: start it afresh)
#   OVN_DOCKER_TEST_RUN=RE   only run tests matching RE (go test -run)
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
step() { # step NAME CMD...: runs one step, records its result and time
	local name=$1 t0=$SECONDS
	shift
	echo "=== $name"
	if "$@"; then
		echo "--- ok   $name ($((SECONDS - t0)) s)"
	else
		echo "--- FAIL $name ($((SECONDS - t0)) s)"
		failed+=("$name")
	fi
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
		echo "FAILED: ${failed[*]} (total $((SECONDS - t_all)) s)"
		exit 1
	fi
	echo "PASSED (total $((SECONDS - t_all)) s)"
}
trap finish EXIT

gofmt_clean() {
	local out
	out=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
	[ -z "$out" ] || { echo "gofmt would change: $out"; return 1; }
}

# What needs no stack runs while the stack comes up: most of that time is spent waiting
# for apt, Keystone and Neutron.
offline_checks() {
	step "go mod download" go mod download
	step "gofmt" gofmt_clean
	step "go vet" go vet ./...
	step "go vet (integration)" go vet -tags integration ./...
	step "unit tests" go test -race -count=1 "${runflag[@]}" ./...
	step "fuzz (brief)" fuzz_briefly
	printf '%s\n' "${failed[@]}" >"$offline_failed"
}
fuzz_briefly() { # every fuzz target of the project, a few seconds each
	local rc=0 file pkg fn
	while IFS=: read -r file fn; do
		pkg=./$(dirname "$file")
		fn=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$fn")
		go test -run '^$' -fuzz "^$fn\$" -fuzztime "${OVN_DOCKER_FUZZTIME:-3s}" "$pkg" >/tmp/fuzz.$$ 2>&1 ||
			{ echo "fuzz $pkg $fn failed:"; tail -20 /tmp/fuzz.$$; rc=1; }
	done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*(f \*testing.F)' internal cmd 2>/dev/null)
	rm -f /tmp/fuzz.$$
	return $rc
}
offline_log=$(mktemp) offline_failed=$(mktemp)
offline_checks >"$offline_log" 2>&1 &
offline_pid=$!

# Tests start from a stack of their own: one left by an earlier (perhaps killed) run may
# hold its containers and ports. OVN_DOCKER_REUSE_STACK=1 keeps a running one.
if [ "${OVN_DOCKER_REUSE_STACK:-}" != 1 ]; then hack/stack.sh down >/dev/null 2>&1 || true; fi
step "stack up" hack/stack.sh up --vms 9 --tenants a,a,a,a,a,a,a,a,b --docker
stack_ok=yes
if [[ " ${failed[*]} " == *" stack up "* ]]; then stack_ok=no; fi
wait "$offline_pid"
cat "$offline_log"
while read -r f; do [ -n "$f" ] && failed+=("$f"); done <"$offline_failed"
rm -f "$offline_log" "$offline_failed"
[ $stack_ok = yes ] || exit 1
hack/stack.sh status
step "integration tests" go test -race -count=1 -timeout 15m -tags integration "${runflag[@]}" ./internal/...
step "end-to-end tests" go test -count=1 -timeout 20m -parallel "${OVN_DOCKER_E2E_PARALLEL:-4}" -tags integration "${runflag[@]}" ./test/...
