#!/usr/bin/env bash
# hack/bench.sh: the measurements of BENCHMARKS.md, on the sandbox stack, in one command.
# Brings the stack up, then inside one VM (vm1): ovn-docker bench (floor, cold and warm
# attach at concurrency 1, 10, 50; 200 attaches at 50); the Docker plugin's cost on
# docker run (TestPluginRunOverhead); and ovn-docker bench --docker with the VM's agent
# running, whose table it writes into BENCHMARKS.md.
#
#   OVN_DOCKER_REUSE_STACK=1      measure on a stack that is already up (no stack.sh up)
#   OVN_DOCKER_BENCH_VM=vm7       the VM to measure in (default vm1); its lease lock is held
#                                 throughout (OVN_DOCKER_BENCH_LEASE_HELD=1: the caller holds it)
#   OVN_DOCKER_BENCH_ONLY=docker  only the --docker bench (attach: only the attach bench;
#                                 scale: only the figures of SCALE.md, TestScaleSubports and
#                                 TestScaleAgent, up to 300 pods and 200 ports in the VM
#                                 (OVN_DOCKER_E2E_SCALE_PODS=1000: up to 1,000 pods, about
#                                 an hour), then TestScaleNetwork over up to 7 VMs of tenant a)
#   OVN_DOCKER_BENCH_NETWORK_VMS  the VMs of TestScaleNetwork, comma-separated (default:
#                                 tenant a's, less the bench's VM when its lease is held)
#   OVN_DOCKER_BIN=/path          the ovn-docker binary to run (default: make build, bin/ovn-docker)
#   OVN_DOCKER_BENCH_DOCKER_ARGS  more flags of bench --docker (e.g. "--pairs 10")
# Arguments are flags of the attach bench.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
RUN=${OVN_DOCKER_STACK_DIR:-/var/lib/ovn-docker-stack}
VM=${OVN_DOCKER_BENCH_VM:-vm1}
ONLY=${OVN_DOCKER_BENCH_ONLY:-}
if [ "${OVN_DOCKER_REUSE_STACK:-}" != 1 ]; then
	hack/stack.sh up --docker
fi
if [ -n "${OVN_DOCKER_BIN:-}" ]; then
	BIN=$OVN_DOCKER_BIN
else
	make -s build
	BIN=$PWD/bin/ovn-docker
fi
[ -f "$RUN/$VM/env" ] || { echo "no VM $VM in $RUN" >&2; exit 1; }
if [ "${OVN_DOCKER_BENCH_LEASE_HELD:-}" != 1 ]; then
	# End-to-end tests on a shared stack leave a leased VM alone.
	exec 9>"$RUN/$VM/lease.lock"
	echo "waiting for the lease of $VM..."
	flock 9
fi
invm() { (set -a && . "$RUN/$VM/env" && set +a && ip netns exec "$VM" "$@"); }

if [ "$ONLY" = scale ]; then
	# Each test takes its VM's lease itself: give the lock back first.
	[ "${OVN_DOCKER_BENCH_LEASE_HELD:-}" = 1 ] || exec 9>&-
	for t in TestScaleSubports TestScaleAgent; do
		echo "# $t in $VM (SCALE.md)"
		OVN_DOCKER_E2E_SCALE=1 OVN_DOCKER_E2E_VMS=$VM go test -count=1 -tags integration -timeout 150m -run "^$t\$" -v ./test/e2e/ |
			grep -E "_test.go:[0-9]+:|--- "
		echo
	done
	NETVMS=${OVN_DOCKER_BENCH_NETWORK_VMS:-}
	if [ -z "$NETVMS" ]; then
		for env in "$RUN"/vm*/env; do
			v=$(basename "$(dirname "$env")")
			[ "${OVN_DOCKER_BENCH_LEASE_HELD:-}" = 1 ] && [ "$v" = "$VM" ] && continue
			grep -q '^export STACK_VM_TENANT=a$' "$env" && NETVMS=${NETVMS:+$NETVMS,}$v
		done
	fi
	echo "# TestScaleNetwork over $NETVMS (SCALE.md)"
	OVN_DOCKER_E2E_SCALE=1 OVN_DOCKER_E2E_VMS=$NETVMS go test -count=1 -tags integration -timeout 30m -run '^TestScaleNetwork$' -v ./test/e2e/ |
		grep -E "_test.go:[0-9]+:|--- "
	exit 0
fi
if [ "$ONLY" != docker ]; then
	echo "# ovn-docker bench in $VM ($(nproc) cores, $(uname -r))"
	invm "$BIN" bench "$@"
	echo
fi
if [ -z "$ONLY" ]; then
	echo "# docker run --network (the plugin) against --net=none, median of 20 each"
	OVN_DOCKER_E2E_BENCH=1 OVN_DOCKER_E2E_VMS=$VM go test -count=1 -tags integration -run TestPluginRunOverhead -v ./test/e2e/ |
		grep -E "median of|--- "
	echo
	echo "# CNI ADD through the agent, one pod at a time: cold (no pool) and warm (pool)"
	OVN_DOCKER_E2E_BENCH=1 OVN_DOCKER_E2E_VMS=$VM go test -count=1 -tags integration -run TestCNIAddLatency -v ./test/e2e/ |
		grep -E "ADD at|--- "
	echo
fi
[ "$ONLY" = attach ] && exit 0

# The --docker bench measures through the VM's agent: start it as the end-to-end tests do.
echo "# ovn-docker bench --docker in $VM, with its agent ($(nproc) cores, $(uname -r))"
STATE=$(set -a && . "$RUN/$VM/env" && echo "$OVN_DOCKER_STATE_DIR")
PLUGINS=$(set -a && . "$RUN/$VM/env" && echo "$STACK_VM_PLUGIN_DIR")
LOG=$(mktemp /tmp/ovn-docker-bench-agent.XXXXXX)
OUT=$(mktemp /tmp/ovn-docker-bench-docker.XXXXXX)
if [ -S "$STATE/agent.sock" ] && invm "$BIN" status 2>/dev/null | grep -Eq '^agent +ok'; then
	echo "an agent already runs in $VM: the bench needs one started with this build; stop it first" >&2
	exit 1
fi
(set -a && . "$RUN/$VM/env" && set +a &&
	exec ip netns exec "$VM" "$BIN" --log-level debug daemon --plugin-dir "$PLUGINS") >"$LOG" 2>&1 &
AGENT=$!
stop_agent() {
	if kill -0 "$AGENT" 2>/dev/null; then
		kill -TERM "$AGENT"
		wait "$AGENT" || true
	fi
}
trap stop_agent EXIT
for _ in $(seq 1 450); do
	invm "$BIN" status 2>/dev/null | grep -Eq '^agent +ok' && break
	kill -0 "$AGENT" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
	sleep 0.2
done
echo "agent pid $AGENT, its log: $LOG; each run's time: $OUT.log"
# shellcheck disable=SC2086 # the extra flags are words
invm "$BIN" --log-level debug bench --docker ${OVN_DOCKER_BENCH_DOCKER_ARGS:-} \
	2> >(tee "$OUT.log" | grep -v 'level=DEBUG' >&2) | tee "$OUT" || rc=$?
stop_agent
trap - EXIT
# Whatever the bench's own cleanup could not release (a pool the agent kept after its
# Docker network went, as it once did): with no agent, gc releases the pools' ready
# interfaces (this VM's other pools' too: the agent refills them when it starts again),
# and the scratch networks can go.
invm "$BIN" gc --drain-pools --grace 1s >/dev/null || true
for n in $(invm "$BIN" list networks | awk '$1 ~ /^ovn-docker-bench-/ {print $1}'); do
	invm "$BIN" delete network "$n" || true
done

# The table goes into BENCHMARKS.md, between its markers (also when the bench's own
# cleanup failed after it printed it).
grep -q '^ *path  *n  .*median' "$OUT" || exit "${rc:-1}"
{
	echo '```'
	sed -n '/^ *path  *n  .*median/,$p' "$OUT" | grep -v '^ovn-docker: '
	echo '```'
	echo
	echo "Measured $(date -u +%Y-%m-%d) in $VM by hack/bench.sh ($(nproc) cores, $(uname -r)), $("$BIN" version), checkout $(git describe --always --dirty)."
} >"$OUT.md"
awk -v table="$OUT.md" '
	/<!-- bench-docker:begin -->/ { print; while ((getline l < table) > 0) print l; skip = 1; next }
	/<!-- bench-docker:end -->/ { skip = 0 }
	!skip { print }
' BENCHMARKS.md >"$OUT.new"
if grep -q '<!-- bench-docker:end -->' "$OUT.new"; then
	mv "$OUT.new" BENCHMARKS.md
	echo "the table is in BENCHMARKS.md"
else
	echo "BENCHMARKS.md has no <!-- bench-docker:begin/end --> markers: the table is in $OUT.md" >&2
fi
exit "${rc:-0}"
