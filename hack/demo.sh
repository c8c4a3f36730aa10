#!/usr/bin/env bash
# hack/demo.sh: the spec's workflow on the sandbox stack, with the spec's own commands.
# Brings the stack up (installing what is missing), then, as tenant-a with a Keystone
# token: creates a network, starts a container in each of two VMs, shows them pinging
# each other and what was made in Neutron, OVN and each VM's OVS, then cleans up.
#   OVN_DOCKER_DEMO_KEEP=1  leave the containers and the network in place
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
RUN=${OVN_DOCKER_STACK_DIR:-/var/lib/ovn-docker-stack}
BIN=$PWD/bin/ovn-docker
bold() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
show() { printf '\033[2m%s$\033[0m %s\n' "${PROMPT:-}" "$*"; }

bold "bring the sandbox stack up (installs what is missing the first time)"
hack/stack.sh up --docker
make -s build

# Each VM's env file: the tenant user's OS_* variables, the VM's port (vif-id), its OVS,
# its dockerd. ovn-docker runs inside the VM (ip netns exec), as it would in a real VM.
in_vm() { # in_vm VM CMD...: run CMD inside the VM with the VM's environment
	local vm=$1
	shift
	(set -a && . "$RUN/$vm/env" && set +a && ip netns exec "$vm" "$@")
}
say_in() { local vm=$1; shift; PROMPT="$vm" show "$*"; }

VIF1=$(. "$RUN/vm1/env" && echo "$OVN_DOCKER_VIF_ID")
VIF2=$(. "$RUN/vm2/env" && echo "$OVN_DOCKER_VIF_ID")
NET=LS1-demo-$$
export OS_CLIENT_CONFIG_FILE=$RUN/clouds.yaml

bold "a Keystone token of tenant-a (the spec's --cred)"
show "openstack --os-cloud tenant-a token issue -f value -c id"
TOKEN=$(openstack --os-cloud tenant-a token issue -f value -c id)
echo "(a token of ${#TOKEN} characters)"

cleanup() {
	[ "${OVN_DOCKER_DEMO_KEEP:-}" = 1 ] && return
	bold "clean up: the containers, their ports, and the network"
	say_in vm1 "ovn-docker rm -f c1"
	in_vm vm1 "$BIN" --cred="$TOKEN" rm -f c1 || true
	say_in vm2 "ovn-docker rm -f c2"
	in_vm vm2 "$BIN" --cred="$TOKEN" rm -f c2 || true
	say_in vm1 "ovn-docker delete network $NET"
	in_vm vm1 "$BIN" --cred="$TOKEN" delete network "$NET" || true
}
trap cleanup EXIT

bold "create a logical switch"
say_in vm1 "ovn-docker --cred=\$TOKEN create network $NET"
in_vm vm1 "$BIN" --cred="$TOKEN" create network "$NET"

bold "list the networks available to the tenant"
say_in vm1 "ovn-docker --cred=\$TOKEN list networks"
in_vm vm1 "$BIN" --cred="$TOKEN" list networks

bold "start a container in each VM on the network (the spec's run command)"
for i in 1 2; do
	vif=$([ $i = 1 ] && echo "$VIF1" || echo "$VIF2")
	say_in "vm$i" "ovn-docker --cred=\$TOKEN --vif-id=$vif --network=$NET run -d --net=none --name c$i busybox:local /bin/sh -c \"while true; do echo hello world; sleep 1; done\""
	in_vm "vm$i" "$BIN" --cred="$TOKEN" --vif-id="$vif" --network="$NET" run -d --net=none --name "c$i" busybox:local \
		/bin/sh -c "while true; do echo hello world; sleep 1; done"
done

bold "what each VM runs: network, VLAN (unique in the VM), Neutron's MAC and IP, the port"
for vm in vm1 vm2; do
	say_in $vm "ovn-docker ps"
	in_vm $vm "$BIN" ps
done
IP2=$(in_vm vm2 "$BIN" ps -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["ips"][0].split("/")[0])')
PORT1=$(in_vm vm1 "$BIN" ps -f json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["port_id"])')

bold "c1 (in vm1) pings c2 (in vm2) at its Neutron address, through OVN"
say_in vm1 "docker exec c1 ping -c 3 $IP2"
in_vm vm1 /usr/bin/docker exec c1 ping -c 3 "$IP2"
say_in vm1 "docker logs --tail 2 c1"
in_vm vm1 /usr/bin/docker logs --tail 2 c1

bold "Neutron: the containers' ports are subports of each VM port's trunk"
show "openstack --os-cloud tenant-a port list --network $NET"
openstack --os-cloud tenant-a port list --network "$NET" -c ID -c "MAC Address" -c "Fixed IP Addresses" -c Status
show "openstack --os-cloud tenant-a network trunk list"
openstack --os-cloud tenant-a network trunk list

bold "OVN Northbound: c1's logical port has the VM's port as parent and c1's VLAN as tag"
show "ovn-nbctl find logical_switch_port name=$PORT1"
ovn-nbctl --db="unix:$RUN/ovn/ovnnb_db.sock" --columns=name,parent_name,tag,addresses,port_security,up \
	find logical_switch_port name="$PORT1"

bold "vm1's own Open vSwitch: eth0 is the uplink (trunk), c1's veth an access port tag=VLAN"
say_in vm1 "ovs-vsctl show"
ovs-vsctl --db="unix:$RUN/vm1/ovs/db.sock" show
