#!/usr/bin/env bash
# hack/demo.sh: brings up the sandbox stack and shows it working: two VMs of tenant-a, each
# with its own OVS and dockerd, reach each other through OVN.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${OVN_DOCKER_STACK_DIR:-/var/lib/ovn-docker-stack}
say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }

say "bring the sandbox stack up (installs what is missing the first time)"
hack/stack.sh up --docker
hack/stack.sh status

# shellcheck disable=SC1091
vm2_ip=$(. "$RUN/vm2/env" && echo "$STACK_VM_IP")
say "vm1 pings vm2 ($vm2_ip) through OVN"
ip netns exec vm1 ping -c 3 "$vm2_ip"
