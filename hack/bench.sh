#!/usr/bin/env bash
# hack/bench.sh: the measurements of BENCHMARKS.md, on the sandbox stack, in one command.
# Brings the stack up, then inside vm1: ovn-docker bench (floor, cold and warm attach at
# concurrency 1, 10, 50; 200 attaches at 50), and the Docker plugin's cost on docker run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
RUN=${OVN_DOCKER_STACK_DIR:-/var/lib/ovn-docker-stack}
hack/stack.sh up --docker
make -s build
echo "# ovn-docker bench in vm1 ($(nproc) cores, $(uname -r))"
(set -a && . "$RUN/vm1/env" && set +a && ip netns exec vm1 bin/ovn-docker bench "$@")
echo
echo "# docker run --network (the plugin) against --net=none, median of 20 each"
OVN_DOCKER_E2E_BENCH=1 OVN_DOCKER_E2E_VMS=vm1 go test -count=1 -tags integration -run TestPluginRunOverhead -v ./test/e2e/ |
	grep -E "median of|--- "
