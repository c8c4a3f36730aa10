#!/usr/bin/env bash
# hack/stack.sh: a complete local OpenStack + OVN sandbox on one machine, loopback only.
#
#   hack/stack.sh up [--vms N] [--tenants a,b,...] [--docker] [--hypervisors N] [--ovn-cluster 1|3|5]
#                                                                install what is missing, start everything
#   hack/stack.sh status                                         what runs and what does not
#   hack/stack.sh logs [component]                               tails of the logs
#   hack/stack.sh down [--purge]                                 stop everything; --purge also deletes the run folder
#   hack/stack.sh stop|start COMPONENT                           one part: neutron, keystone, ovn-nb, vmN-ovsdb, start vmN-dockerd,
#                                                                hvK-ovn-controller; stop hvK (K>1, no VM on it);
#                                                                ovn-sb, ovn-nbI, ovn-sbI, ovn-nb-leader, ovn-sb-leader
#   hack/stack.sh hypervisors N                                  add hv2..hvN to the running stack
#   hack/stack.sh migrate VM HV                                  move a running VM to hypervisor HV
#
# Everything lives under one run folder, $OVN_DOCKER_STACK_DIR (default /var/lib/ovn-docker-stack).
# What runs: MariaDB (unix socket only), Keystone on 127.0.0.1:5000, neutron-server with ML2/OVN,
# the trunk and QoS plugins and DNS names on ports on 127.0.0.1:9696, OVN NB/SB/northd (standalone,
# or with --ovn-cluster 3 each database a Raft cluster with a northd per member: hack/stack_ovn.sh), the
# hypervisor's OVS (netdev datapath) with br-int and ovn-controller, and N "VMs": network
# namespaces whose eth0 is bound on br-int to the VM's Neutron port, each with its own OVS
# (bridge br0, eth0 as uplink), loopback relays to Keystone and Neutron, and on request its own
# dockerd with busybox:local. Each tenant's management subnet has a router, so its gateway answers.
# Each VM gets $RUN/vmN/env: OS_* of its tenant's user, its vif-id, OVSDB socket, bridge, DOCKER_HOST.
set -euo pipefail

RUN=${OVN_DOCKER_STACK_DIR:-/var/lib/ovn-docker-stack}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOGS=$RUN/logs
PY=/usr/bin/python3
DOCKERD=/usr/sbin/dockerd
DOCKER=/usr/bin/docker
KEYSTONE_URL=http://127.0.0.1:5000/v3
NEUTRON_URL=http://127.0.0.1:9696/
HV_DB=$RUN/hv/db.sock
NB_SOCK=$RUN/ovn/ovnnb_db.sock
SB_SOCK=$RUN/ovn/ovnsb_db.sock
MYSQL_SOCK=$RUN/mysql/mysqld.sock
# shellcheck source=hack/stack_ovn.sh
. "$HERE/stack_ovn.sh"
ovn_remotes
# shellcheck source=hack/stack_hypervisors.sh
. "$HERE/stack_hypervisors.sh"

PACKAGES=(openvswitch-switch ovn-central ovn-host neutron-server python3-neutron mariadb-server
	python3-pymysql keystone python3-openstackclient uwsgi-core uwsgi-plugin-python3 docker.io
	busybox-static iputils-ping socat iproute2 procps psmisc curl util-linux podman ethtool libfaketime)

log() { printf '%s stack: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# A failed start-up lets Neutron's migrations, if they run in the background, end first:
# run again at once, "up" would otherwise start a second migration beside them.
die() {
	log "error: $*"
	if [ -n "${migrating:-}" ] && kill -0 "$migrating" 2>/dev/null; then
		log "waiting for Neutron's database migrations to end"
		wait "$migrating" 2>/dev/null || true
	fi
	exit 1
}
# ovs-vsctl and friends against one of our databases, never the system's.
hv_vsctl() { ovs-vsctl --timeout=20 --db="unix:$HV_DB" "$@"; }
hv_ovs_up() { alive "$RUN/hv/ovs-vswitchd.pid" && hv_vsctl --timeout=2 br-exists br-int; }
vm_vsctl() { local vm=$1; shift; ovs-vsctl --timeout=20 --db="unix:$RUN/$vm/ovs/db.sock" "$@"; }
vm_ovs_up() { alive "$RUN/$1/ovs/ovs-vswitchd.pid" && vm_vsctl "$1" --timeout=2 br-exists br0; }
nbctl() { ovn-nbctl --db="$NB_REMOTE" "$@"; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

# spawn PIDFILE LOGFILE CMD...: runs CMD in its own session, detached, and records its pid.
spawn() {
	local pidfile=$1 logfile=$2
	shift 2
	setsid "$@" </dev/null >>"$logfile" 2>&1 &
	echo $! >"$pidfile"
}

wait_for() { # wait_for SECONDS WHAT CMD...
	local t=$1 what=$2
	shift 2
	local end=$((SECONDS + t))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.2
	done
}

secret() { # secret NAME: a password generated once, kept 0600 under the run folder
	local f=$RUN/secrets/$1
	if [ ! -s "$f" ]; then
		(umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$f")
	fi
	cat "$f"
}

# ---------------------------------------------------------------------------------------------
install_packages() {
	local missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	local t0=$SECONDS
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >"$LOGS/apt.log" 2>&1 || { tail -20 "$LOGS/apt.log"; die "apt-get update failed"; }
	# unsafe-io: dpkg does not sync each file it unpacks; a crash mid-install means installing again.
	apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io "${missing[@]}" >>"$LOGS/apt.log" 2>&1 ||
		{ tail -30 "$LOGS/apt.log"; die "apt-get install failed"; }
	log "installed in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------------------------
start_mariadb() {
	local pid=$RUN/mysql.pid
	if alive "$pid" && mariadb-admin --socket="$MYSQL_SOCK" ping >/dev/null 2>&1; then return 0; fi
	mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
	if [ ! -d "$RUN/mysql/data/mysql" ]; then
		mkdir -p "$RUN/mysql/data"
		chown -R mysql:mysql "$RUN/mysql"
		mariadb-install-db --user=mysql --datadir="$RUN/mysql/data" --auth-root-authentication-method=socket \
			--skip-test-db >>"$LOGS/mariadb.log" 2>&1 || die "mariadb-install-db failed (see $LOGS/mariadb.log)"
	fi
	chown mysql:mysql "$RUN/mysql"
	# skip-networking: the sandbox's database listens on a unix socket only.
	spawn "$pid" "$LOGS/mariadb.log" /usr/sbin/mariadbd --user=mysql --datadir="$RUN/mysql/data" \
		--socket="$MYSQL_SOCK" --pid-file="$RUN/mysql/mariadbd.pid" --skip-networking \
		--innodb-buffer-pool-size=64M --max-connections=300 --log-error="$LOGS/mariadb.log"
	wait_for 60 mariadb mariadb-admin --socket="$MYSQL_SOCK" ping || die "mariadb did not start (see $LOGS/mariadb.log)"
	local kpw npw
	kpw=$(secret mysql-keystone)
	npw=$(secret mysql-neutron)
	mariadb --socket="$MYSQL_SOCK" -u root <<SQL
CREATE DATABASE IF NOT EXISTS keystone;
CREATE DATABASE IF NOT EXISTS neutron;
CREATE USER IF NOT EXISTS 'keystone'@'localhost' IDENTIFIED BY '$kpw';
CREATE USER IF NOT EXISTS 'neutron'@'localhost' IDENTIFIED BY '$npw';
GRANT ALL PRIVILEGES ON keystone.* TO 'keystone'@'localhost';
GRANT ALL PRIVILEGES ON neutron.* TO 'neutron'@'localhost';
FLUSH PRIVILEGES;
SQL
}

# ---------------------------------------------------------------------------------------------
ovn_ctl() {
	OVN_RUNDIR=$RUN/ovn OVN_LOGDIR=$LOGS OVN_DBDIR=$RUN/ovn /usr/share/ovn/scripts/ovn-ctl \
		--db-nb-file="$RUN/ovn/ovnnb_db.db" --db-sb-file="$RUN/ovn/ovnsb_db.db" \
		--db-nb-sock="$NB_SOCK" --db-sb-sock="$SB_SOCK" \
		--db-nb-pidfile="$RUN/ovn/ovnnb_db.pid" --db-sb-pidfile="$RUN/ovn/ovnsb_db.pid" \
		--ovn-northd-pidfile="$RUN/ovn/ovn-northd.pid" \
		--db-nb-create-insecure-remote=no --db-sb-create-insecure-remote=no \
		--no-monitor "$@"
}

# ---------------------------------------------------------------------------------------------
# start_ovs DIR NETNS: an ovsdb-server + ovs-vswitchd pair with all state in DIR; vswitchd runs in
# NETNS ("" = the root namespace).
start_ovs() {
	local dir=$1 netns=$2 name=${2:-hv}
	mkdir -p "$dir"
	if alive "$dir/ovsdb-server.pid" && alive "$dir/ovs-vswitchd.pid"; then return 0; fi
	[ -f "$dir/conf.db" ] || ovsdb-tool create "$dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	if ! alive "$dir/ovsdb-server.pid"; then
		ovsdb-server --remote="punix:$dir/db.sock" --pidfile="$dir/ovsdb-server.pid" --detach --monitor \
			--unixctl="$dir/ovsdb-server.ctl" -vconsole:off --log-file="$LOGS/ovsdb-server-$name.log" "$dir/conf.db"
		ovs-vsctl --db="unix:$dir/db.sock" --no-wait init
	fi
	if ! alive "$dir/ovs-vswitchd.pid"; then
		local pre=()
		[ -n "$netns" ] && pre=(nsenter --net="/run/netns/$netns")
		# --monitor: a crash (the userspace datapath's conntrack has asserted under these
		# tests' traffic: conntrack.c "conn->conn_type == CT_CONN_TYPE_DEFAULT") restarts
		# it at once, as the distribution's service would, instead of leaving the chassis
		# without flows for the rest of the run.
		OVS_RUNDIR=$dir "${pre[@]}" ovs-vswitchd "unix:$dir/db.sock" --pidfile="$dir/ovs-vswitchd.pid" \
			--detach --monitor --unixctl="$dir/ovs-vswitchd.ctl" -vconsole:off --log-file="$LOGS/ovs-vswitchd-$name.log"
	fi
}

stop_ovs() { # stop_ovs DIR NETNS
	local dir=$1 netns=$2
	for d in ovs-vswitchd ovsdb-server; do
		if alive "$dir/$d.pid"; then
			ovs-appctl -t "$dir/$d.ctl" exit >/dev/null 2>&1 || kill "$(cat "$dir/$d.pid")" 2>/dev/null || true
		fi
	done
	for d in ovs-vswitchd ovsdb-server; do
		wait_for 5 "$d exit" bash -c "! kill -0 \$(cat '$dir/$d.pid' 2>/dev/null) 2>/dev/null" ||
			kill -9 "$(cat "$dir/$d.pid")" 2>/dev/null || true
		rm -f "$dir/$d.pid"
	done
	# A netdev vswitchd leaves its tap devices behind.
	local pre=()
	[ -n "$netns" ] && pre=(ip netns exec "$netns")
	if [ -z "$netns" ] || [ -e "/run/netns/$netns" ]; then
		for tap in ovs-netdev $(basename "$dir" | sed -n 's/^hv$/br-int/p') br0; do
			"${pre[@]}" ip link del "$tap" >/dev/null 2>&1 || true
		done
	fi
}

start_hypervisor() {
	start_ovs "$RUN/hv" ""
	hv_vsctl --may-exist add-br br-int -- set bridge br-int datapath_type=netdev fail-mode=secure \
		other-config:disable-in-band=true
	hv_vsctl set open . external_ids:ovn-remote="$SB_REMOTE" external_ids:ovn-encap-type=geneve \
		external_ids:ovn-encap-ip="$(hv1_encap_ip)" external_ids:system-id=hv1 external_ids:hostname=hv1 \
		external_ids:ovn-bridge-datapath-type=netdev
	if ! alive "$RUN/hv/ovn-controller.pid"; then
		OVS_RUNDIR=$RUN/hv OVN_RUNDIR=$RUN/hv ovn-controller "unix:$HV_DB" --pidfile="$RUN/hv/ovn-controller.pid" \
			--detach -vconsole:off --log-file="$LOGS/ovn-controller.log"
	fi
	wait_for 30 chassis bash -c "ovn-sbctl --db=$SB_REMOTE --timeout=2 --columns=name --bare list chassis | grep -qx hv1" ||
		die "ovn-controller did not register chassis hv1 (see $LOGS/ovn-controller.log)"
}

# ---------------------------------------------------------------------------------------------
write_keystone_conf() {
	mkdir -p "$RUN/keystone/fernet-keys" "$RUN/keystone/credential-keys"
	chmod 700 "$RUN/keystone"
	(umask 077 && cat >"$RUN/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $LOGS/keystone.log
[database]
connection = mysql+pymysql://keystone:$(secret mysql-keystone)@localhost/keystone?unix_socket=$MYSQL_SOCK
[token]
provider = fernet
[fernet_tokens]
key_repository = $RUN/keystone/fernet-keys
[credential]
key_repository = $RUN/keystone/credential-keys
[identity]
# bcrypt at its cheapest: the sandbox authenticates often and only on loopback.
password_hash_rounds = 4
[cache]
# Without a cache every token validation rebuilds roles and catalog from the database
# (about a second here); an in-process cache makes it milliseconds.
enabled = true
backend = dogpile.cache.memory
EOF
	)
}

start_keystone() {
	local pid=$RUN/keystone.pid conf=$RUN/keystone/keystone.conf
	if alive "$pid" && curl -sf "$KEYSTONE_URL" >/dev/null; then return 0; fi
	write_keystone_conf
	if [ ! -f "$RUN/keystone/.bootstrapped" ]; then
		log "keystone: db_sync, keys, bootstrap"
		keystone-manage --config-file "$conf" db_sync >>"$LOGS/keystone-manage.log" 2>&1 || die "keystone db_sync failed"
		keystone-manage --config-file "$conf" fernet_setup --keystone-user root --keystone-group root >>"$LOGS/keystone-manage.log" 2>&1
		keystone-manage --config-file "$conf" credential_setup --keystone-user root --keystone-group root >>"$LOGS/keystone-manage.log" 2>&1
		keystone-manage --config-file "$conf" bootstrap --bootstrap-password "$(secret admin)" \
			--bootstrap-admin-url "$KEYSTONE_URL/" --bootstrap-internal-url "$KEYSTONE_URL/" \
			--bootstrap-public-url "$KEYSTONE_URL/" --bootstrap-region-id RegionOne >>"$LOGS/keystone-manage.log" 2>&1 ||
			die "keystone bootstrap failed (see $LOGS/keystone-manage.log)"
		touch "$RUN/keystone/.bootstrapped"
	fi
	chmod -R go-rwx "$RUN/keystone"
	# One connection per request: with keep-alive, idle client connections pin uwsgi's
	# threads and new clients wait seconds for one. A Date header, as the web server in front
	# of a cloud's Keystone sends: doctor compares the VM's clock with it.
	OS_KEYSTONE_CONFIG_FILES=$conf spawn "$pid" "$LOGS/keystone-uwsgi.log" uwsgi --plugin python3 \
		--http-socket 127.0.0.1:5000 --add-header "Connection: close" --route-run 'addheader:Date: ${httptime[]}' \
		--wsgi-file /usr/bin/keystone-wsgi-public --processes 1 --threads 4 \
		--die-on-term --need-app --procname-prefix "ovn-docker-stack-"
	wait_for 60 keystone curl -sf "$KEYSTONE_URL" || die "keystone did not answer (see $LOGS/keystone-uwsgi.log)"
}

# ---------------------------------------------------------------------------------------------
write_neutron_conf() {
	mkdir -p "$RUN/neutron/lock" "$RUN/neutron/state"
	chmod 700 "$RUN/neutron"
	(umask 077 && cat >"$RUN/neutron/neutron.conf" <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins = ovn-router,trunk,qos
bind_host = 127.0.0.1
bind_port = 9696
api_workers = $([ "$(ovn_members)" -gt 1 ] && echo 2 || echo 1)
rpc_workers = 0
rpc_state_report_workers = 0
transport_url = fake:/
auth_strategy = keystone
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
api_paste_config = /etc/neutron/api-paste.ini
state_path = $RUN/neutron/state
log_file = $LOGS/neutron-server.log
allow_overlapping_ips = true
dns_domain = sandbox.test.
[database]
connection = mysql+pymysql://neutron:$(secret mysql-neutron)@localhost/neutron?unix_socket=$MYSQL_SOCK
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000/
auth_url = http://127.0.0.1:5000/
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = neutron
password = $(secret neutron)
interface = public
[oslo_concurrency]
lock_path = $RUN/neutron/lock
[quotas]
quota_port = 2500
EOF
	)
	(umask 077 && cat >"$RUN/neutron/ml2_conf.ini" <<EOF
[ml2]
type_drivers = geneve,flat
tenant_network_types = geneve
mechanism_drivers = ovn
extension_drivers = port_security,qos,dns_domain_ports
[ml2_type_geneve]
vni_ranges = 1:65536
max_header_size = 38
[securitygroup]
enable_security_group = true
[ovn]
ovn_nb_connection = $NB_REMOTE
ovn_sb_connection = $SB_REMOTE
ovn_metadata_enabled = False
EOF
	)
}

# migrate_neutron: Neutron's configuration and database schema. It needs only MariaDB, so
# cmd_up runs it beside the set-up of OVN and Keystone.
migrate_neutron() {
	write_neutron_conf
	[ -f "$RUN/neutron/.migrated" ] && return 0
	log "neutron: database migrations"
	neutron-db-manage --config-file "$RUN/neutron/neutron.conf" --config-file "$RUN/neutron/ml2_conf.ini" \
		upgrade head >>"$LOGS/neutron-db-manage.log" 2>&1 || return 1
	touch "$RUN/neutron/.migrated"
}
start_neutron() {
	local pid=$RUN/neutron.pid
	if alive "$pid" && curl -sf "$NEUTRON_URL" >/dev/null; then return 0; fi
	write_neutron_conf
	[ -f "$RUN/neutron/.migrated" ] || migrate_neutron || die "neutron-db-manage failed (see $LOGS/neutron-db-manage.log)"
	local cf=(--config-file "$RUN/neutron/neutron.conf" --config-file "$RUN/neutron/ml2_conf.ini")
	spawn "$pid" "$LOGS/neutron-server.out" neutron-server "${cf[@]}"
	wait_for 120 neutron curl -sf "$NEUTRON_URL" || die "neutron-server did not answer (see $LOGS/neutron-server.log)"
}

# ---------------------------------------------------------------------------------------------
admin_env() {
	cat <<EOF
export OS_AUTH_URL=$KEYSTONE_URL
export OS_IDENTITY_API_VERSION=3
export OS_REGION_NAME=RegionOne
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_USERNAME=admin
export OS_PASSWORD=$(secret admin)
export OS_PROJECT_NAME=admin
EOF
}

# provision STEP ...: the Keystone and Neutron objects of the sandbox (hack/stack_provision.py).
provision() {
	(
		eval "$(admin_env)"
		export STACK_RUN=$RUN STACK_NEUTRON_PASSWORD=$(secret neutron)
		$PY "$HERE/stack_provision.py" "$@"
	)
}

# ---------------------------------------------------------------------------------------------
# The "VMs".
relay_up() { # root-namespace ends of the loopback relays, shared by every VM
	mkdir -p "$RUN/relay"
	chmod 700 "$RUN/relay"
	for port in 5000 9696; do
		local p=$RUN/relay/$port.pid
		alive "$p" && continue
		rm -f "$RUN/relay/$port.sock"
		spawn "$p" "$LOGS/relay.log" socat "UNIX-LISTEN:$RUN/relay/$port.sock,fork,mode=600" "TCP:127.0.0.1:$port"
	done
}

start_vm() { # start_vm NAME TENANT WITH_DOCKER [HYPERVISOR]
	local vm=$1 tenant=$2 docker=$3 d=$RUN/$1 hv=${4:-hv1}
	mkdir -p "$d"
	chmod 700 "$d"
	local info
	# A running VM stays on its hypervisor; one that boots goes where it is told.
	if [ -e "/run/netns/$vm" ]; then hv=$(vm_hv "$vm"); fi
	# The VM's Neutron port, looked up once and kept (provisioning costs seconds of Python).
	if [ -s "$d/port" ] && [ "$(cut -d' ' -f7 "$d/port")" = "$tenant" ]; then
		info=$(cat "$d/port")
		# Bound where the VM lands (ports of stacks before hypervisors were bound to hv1).
		if [ "$(cat "$d/bound-host" 2>/dev/null || echo hv1)" != "$hv" ]; then
			provision bind "$(cut -d' ' -f1 <<<"$info")" "$hv" || die "binding $vm's port to $hv failed"
		fi
	else
		info=$(provision vm "$vm" "$tenant" "$hv") || die "provisioning $vm failed"
		echo "$info $tenant" >"$d/port"
	fi
	echo "$hv" >"$d/bound-host"
	local port_id mac ip prefix mtu gw
	read -r port_id mac ip prefix mtu gw <<<"$info"
	if [ ! -e "/run/netns/$vm" ]; then
		# A VM that boots starts clean: what an earlier run left (containers of a killed
		# test run, their OVS ports, ovn-docker state) belongs to a machine that is gone,
		# and a dockerd that must first reap a hundred dead containers may not start at all.
		stop_vm "$vm"
		rm -rf "$d/docker" "$d/ovs" "$d/ovn-docker" "$d/plugins" "$d/etc-plugins"
		ip netns add "$vm"
	fi
	ip -n "$vm" link set lo up
	# The VM's NIC: vmN-hv on its hypervisor's br-int, bound to the VM's Neutron port; eth0 inside the VM.
	if ! hv_ip "$hv" link show "$vm-hv" >/dev/null 2>&1; then
		ip link add "$vm-hv" mtu "$mtu" type veth peer name "$vm-eth0" mtu "$mtu"
		ip link set "$vm-eth0" netns "$vm"
		ip -n "$vm" link set "$vm-eth0" name eth0
		[ "$hv" = hv1 ] || ip link set "$vm-hv" netns "$hv"
	fi
	hv_ip "$hv" link set "$vm-hv" up
	ip -n "$vm" link set eth0 address "$mac" up
	# eth0 belongs to the VM's OVS, which reads it through AF_PACKET; the VM's kernel must not
	# answer on it too (a kernel datapath would steal its frames), or every packet is seen twice.
	ip -n "$vm" link set eth0 arp off
	ip netns exec "$vm" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 net.ipv4.conf.eth0.rp_filter=1
	vm_plug "$vm" "$hv" "$port_id" "$mac"
	# The VM's own OVS: br0 with eth0 as its trunk uplink, the VM's address on br0.
	start_ovs "$d/ovs" "$vm"
	vm_vsctl "$vm" --may-exist add-br br0 -- set bridge br0 datapath_type=netdev other-config:hwaddr="$mac"
	vm_vsctl "$vm" --may-exist add-port br0 eth0
	wait_for 10 br0 ip -n "$vm" link show br0 || die "$vm: br0 did not appear"
	ip -n "$vm" link set br0 mtu "$mtu" up
	ip -n "$vm" addr replace "$ip/$prefix" dev br0
	# Loopback relays: the catalog's 127.0.0.1 URLs work inside the VM.
	for port in 5000 9696; do
		local p=$d/relay-$port.pid
		alive "$p" && continue
		spawn "$p" "$LOGS/relay.log" nsenter --net="/run/netns/$vm" socat \
			"TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$RUN/relay/$port.sock"
	done
	[ "$docker" = yes ] && start_vm_docker "$vm"
	write_vm_env "$vm" "$tenant" "$port_id" "$mac" "$ip" "$docker"
	echo "export STACK_VM_HYPERVISOR=$hv" >>"$d/env"
	wait_for 10 "relay" ip netns exec "$vm" curl -sf "$NEUTRON_URL" || die "$vm: the Neutron relay does not answer"
}

start_vm_docker() {
	local vm=$1 d=$RUN/$1
	local sock=$d/docker.sock
	if ! alive "$d/dockerd.pid" || ! $DOCKER -H "unix://$sock" version >/dev/null 2>&1; then
		mkdir -p "$d/docker/data" "$d/docker/exec" "$d/plugins" "$d/etc-plugins" /run/docker/plugins /etc/docker/plugins
		# Its own mount namespace gives this dockerd a private view of the plugin folders, so a
		# plugin started in this VM is seen by this VM's dockerd only.
		spawn "$d/dockerd.pid" "$LOGS/dockerd-$vm.log" nsenter --net="/run/netns/$vm" \
			unshare -m --propagation private sh -c "mount --bind '$d/plugins' /run/docker/plugins &&
				mount --bind '$d/etc-plugins' /etc/docker/plugins &&
				exec $DOCKERD --data-root '$d/docker/data' --exec-root '$d/docker/exec' --pidfile '$d/docker/dockerd.pid' \
					-H 'unix://$sock' --bridge=none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
					--storage-driver=overlay2"
		wait_for 60 dockerd $DOCKER -H "unix://$sock" version || die "$vm: dockerd did not start (see $LOGS/dockerd-$vm.log)"
	fi
	if ! $DOCKER -H "unix://$sock" image inspect busybox:local >/dev/null 2>&1; then
		import_busybox "$sock"
	fi
}

import_busybox() {
	local sock=$1 img
	img=$(mktemp -d)
	mkdir -p "$img/bin" "$img/tmp" "$img/etc"
	cp /bin/busybox "$img/bin/busybox"
	for a in $("$img/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$img/bin/$a"
	done
	echo "root:x:0:0:root:/root:/bin/sh" >"$img/etc/passwd"
	tar -C "$img" -c . | $DOCKER -H "unix://$sock" import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/bin' - busybox:local >/dev/null
	rm -rf "$img"
}

write_vm_env() {
	local vm=$1 tenant=$2 port_id=$3 mac=$4 ip=$5 docker=$6 d=$RUN/$1
	(umask 077 && cat >"$d/env" <<EOF
# Source this file to act as tenant $tenant's user inside VM $vm.
export OS_AUTH_URL=$KEYSTONE_URL
export OS_IDENTITY_API_VERSION=3
export OS_REGION_NAME=RegionOne
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_USERNAME=user-$tenant
export OS_PASSWORD=$(secret "user-$tenant")
export OS_PROJECT_NAME=tenant-$tenant
export OVN_DOCKER_VIF_ID=$port_id
export OVN_DOCKER_OVSDB=unix:$d/ovs/db.sock
export OVN_DOCKER_BRIDGE=br0
export OVN_DOCKER_UPLINK=eth0
export OVN_DOCKER_STATE_DIR=$d/ovn-docker
export STACK_VM=$vm
export STACK_VM_TENANT=$tenant
export STACK_VM_MAC=$mac
export STACK_VM_IP=$ip
export STACK_VM_NETNS=$vm
export STACK_VM_EXEC="ip netns exec $vm"
export STACK_VM_PLUGIN_DIR=$d/plugins
export STACK_VM_SPEC_DIR=$d/etc-plugins
EOF
	)
	if [ "$docker" = yes ]; then
		echo "export DOCKER_HOST=unix://$d/docker.sock" >>"$d/env"
	fi
}

stop_vm() {
	local vm=$1 d=$RUN/$1
	if alive "$d/dockerd.pid"; then
		kill "$(cat "$d/dockerd.pid")" 2>/dev/null || true
		wait_for 20 "dockerd exit" bash -c "! kill -0 \$(cat '$d/dockerd.pid') 2>/dev/null" ||
			kill -9 "$(cat "$d/dockerd.pid")" 2>/dev/null || true
	fi
	rm -f "$d/dockerd.pid"
	for port in 5000 9696; do
		alive "$d/relay-$port.pid" && kill "$(cat "$d/relay-$port.pid")" 2>/dev/null
		rm -f "$d/relay-$port.pid"
	done
	stop_ovs "$d/ovs" "$vm"
	local hv
	hv=$(vm_hv "$vm")
	[ -S "$(hv_db "$hv")" ] && alive "$(hv_dir "$hv")/ovsdb-server.pid" && hvk_vsctl "$hv" --if-exists del-port br-int "$vm-hv" >/dev/null 2>&1
	hv_ip "$hv" link del "$vm-hv" >/dev/null 2>&1 || true
	rm -f "$d/hypervisor"
	ip netns del "$vm" >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------------------------------------
write_stack_env() {
	(umask 077 && {
		echo "# The sandbox stack: source for admin credentials and the stack's addresses."
		admin_env
		cat <<EOF
export STACK_DIR=$RUN
export STACK_NB=$NB_REMOTE
export STACK_SB=$SB_REMOTE
export STACK_OVN_MEMBERS=$(ovn_members)
export STACK_HYPERVISORS=$(hv_list | wc -l)
export STACK_HV_OVSDB=unix:$HV_DB
export STACK_VMS="$*"
export STACK_NEUTRON_URL=$NEUTRON_URL
export OS_CLIENT_CONFIG_FILE=$RUN/clouds.yaml
EOF
	} >"$RUN/stack.env")
	# clouds.yaml: "admin" and one cloud per tenant ("tenant-a", ...), for tools and tests.
	(umask 077 && {
		echo "clouds:"
		local c
		for c in admin $(ls "$RUN/secrets" | sed -n 's/^user-\([a-z]\)$/\1/p'); do
			local user=admin project=admin pw
			[ "$c" = admin ] || { user=user-$c; project=tenant-$c; }
			pw=$(secret "$user")
			[ "$c" = admin ] || c=tenant-$c
			cat <<EOF
  $c:
    auth:
      auth_url: $KEYSTONE_URL
      username: $user
      password: $pw
      project_name: $project
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
    interface: public
EOF
		done
	} >"$RUN/clouds.yaml")
}

cmd_up() {
	local vms=2 tenants="" docker=no hypervisors=1 members=""
	while [ $# -gt 0 ]; do
		case $1 in
		--vms) vms=$2; shift 2 ;;
		--vms=*) vms=${1#*=}; shift ;;
		--tenants) tenants=$2; shift 2 ;;
		--tenants=*) tenants=${1#*=}; shift ;;
		--docker) docker=yes; shift ;;
		--hypervisors) hypervisors=$2; shift 2 ;;
		--hypervisors=*) hypervisors=${1#*=}; shift ;;
		--ovn-cluster) members=$2; shift 2 ;;
		--ovn-cluster=*) members=${1#*=}; shift ;;
		*) die "up: unknown option $1" ;;
		esac
	done
	[[ $vms =~ ^[0-9]+$ ]] && [ "$vms" -ge 1 ] && [ "$vms" -le 20 ] || die "up: --vms takes 1..20"
	[ -n "$tenants" ] || tenants=$(printf 'a%.0s,' $(seq "$vms"))
	IFS=, read -r -a tenant_of <<<"${tenants%,}"
	for t in "${tenant_of[@]}"; do
		[[ $t =~ ^[a-z]$ ]] || die "up: tenants are single letters (a, b): got '$t'"
	done
	[[ $hypervisors =~ ^[1-9]$ ]] || die "up: --hypervisors takes 1..9"
	# A cloud's shape, unless told otherwise: several hypervisors get OVN's databases as
	# 3-member Raft clusters.
	if [ -z "$members" ]; then
		members=$(ovn_members)
		if [ "$hypervisors" -ge 3 ]; then members=3; fi
	fi
	[[ $members =~ ^[135]$ ]] || die "up: --ovn-cluster takes 1, 3 or 5 (Raft members)"
	if [ "$members" != "$(ovn_members)" ] && ovn_central_alive; then
		die "up: OVN runs with $(ovn_members) member(s) per database; take the stack down first to change its shape"
	fi
	local t0=$SECONDS want
	want="vms=$vms tenants=${tenant_of[*]} docker=$docker ovn=$members"
	[ "$hypervisors" = 1 ] || want="$want hypervisors=$hypervisors"
	if [ -f "$RUN/stack.env" ] && [ "$(cat "$RUN/up.args" 2>/dev/null)" = "$want" ] && cmd_status >/dev/null 2>&1; then
		log "already up ($want)"
		return 0
	fi
	mkdir -p "$RUN" "$LOGS" "$RUN/secrets"
	chmod 711 "$RUN"
	chmod 700 "$RUN/secrets" "$LOGS"
	install_packages
	start_mariadb
	# Neutron's migrations (a minute on a fresh machine) run while OVN and Keystone start. Its
	# secrets exist before, so that the two sides cannot each make a different one.
	migrating=
	if ! alive "$RUN/neutron.pid" && [ ! -f "$RUN/neutron/.migrated" ]; then
		secret neutron >/dev/null
		migrate_neutron &
		migrating=$!
	fi
	ovn_shape "$members"
	start_ovn_central
	start_hypervisor
	hypervisors_up "$hypervisors"
	start_keystone
	local idmark
	idmark="$RUN/keystone/.identity-$(printf '%s' "${tenant_of[@]}" | fold -w1 | sort -u | tr -d '\n')"
	if [ ! -f "$idmark" ]; then
		provision identity "${tenant_of[@]}" || die "identity provisioning failed"
		touch "$idmark"
	fi
	if [ -n "$migrating" ]; then
		local rc=0
		wait "$migrating" || rc=$?
		migrating=
		[ $rc -eq 0 ] || die "neutron-db-manage failed (see $LOGS/neutron-db-manage.log)"
	fi
	start_neutron
	relay_up
	# The tenants' management networks first (once), then the VMs side by side: each
	# spends its time waiting on Neutron, OVS and dockerd.
	if [ ! -f "$RUN/neutron/.networks+routers-${idmark##*-}" ]; then
		provision networks "${tenant_of[@]}" || die "management networks could not be made"
		touch "$RUN/neutron/.networks+routers-${idmark##*-}"
	fi
	# VMs that boot again start clean in Neutron too (their local state goes in start_vm).
	local booting=() i
	for i in $(seq "$vms"); do
		[ -e "/run/netns/vm$i" ] || [ ! -s "$RUN/vm$i/port" ] || booting+=("$(cut -d' ' -f1 "$RUN/vm$i/port")")
	done
	if [ ${#booting[@]} -gt 0 ]; then
		provision reset "${booting[@]}" || die "the VMs' earlier container ports could not be removed"
	fi
	local names=() pids=()
	for i in $(seq "$vms"); do
		local t=${tenant_of[$((i - 1))]:-a}
		(start_vm "vm$i" "$t" "$docker" "hv$(((i - 1) % hypervisors + 1))") >"$LOGS/up-vm$i.log" 2>&1 &
		pids+=($!)
		names+=("vm$i")
	done
	local failed_vms=()
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || failed_vms+=("${names[$i]}")
	done
	if [ ${#failed_vms[@]} -gt 0 ]; then
		for vm in "${failed_vms[@]}"; do tail -5 "$LOGS/up-$vm.log" >&2; done
		die "VMs did not come up: ${failed_vms[*]}"
	fi
	# VMs started earlier with a larger --vms keep running: list them all.
	for d in "$RUN"/vm*; do
		local n
		n=$(basename "$d")
		[ -s "$d/env" ] && [ -e "/run/netns/$n" ] && [[ " ${names[*]} " != *" $n "* ]] && names+=("$n")
	done
	write_stack_env $(printf '%s\n' "${names[@]}" | sort -V)
	echo "$want" >"$RUN/up.args"
	log "up in $((SECONDS - t0)) s; run folder $RUN"
}

cmd_down() {
	local purge=no
	[ "${1:-}" = "--purge" ] && purge=yes
	[ -d "$RUN" ] || { log "nothing to stop"; return 0; }
	for d in "$RUN"/vm*; do
		[ -d "$d" ] && stop_vm "$(basename "$d")"
	done
	for port in 5000 9696; do alive "$RUN/relay/$port.pid" && kill "$(cat "$RUN/relay/$port.pid")" 2>/dev/null; done
	for p in neutron keystone; do
		if alive "$RUN/$p.pid"; then kill -- "-$(cat "$RUN/$p.pid")" 2>/dev/null || true; fi
	done
	if alive "$RUN/hv/ovn-controller.pid"; then
		ovn-appctl -t "$RUN/hv/ovn-controller.$(cat "$RUN/hv/ovn-controller.pid").ctl" exit >/dev/null 2>&1 || kill "$(cat "$RUN/hv/ovn-controller.pid")" 2>/dev/null || true
	fi
	hypervisors_down
	stop_ovs "$RUN/hv" ""
	stop_ovn_central
	if alive "$RUN/mysql.pid"; then
		kill "$(cat "$RUN/mysql.pid")" 2>/dev/null || true
		wait_for 30 "mariadb exit" bash -c "! kill -0 \$(cat '$RUN/mysql.pid') 2>/dev/null" || true
	fi
	# Anything still holding the run folder (workers, container shims): gone.
	sleep 0.5
	pkill -TERM -f -- "$RUN/" 2>/dev/null || true
	sleep 1
	pkill -KILL -f -- "$RUN/" 2>/dev/null || true
	rm -f "$RUN"/*.pid "$RUN"/relay/*.pid "$RUN"/relay/*.sock
	if [ $purge = yes ]; then
		rm -rf "$RUN"
		log "stopped and purged $RUN"
	else
		log "stopped"
	fi
}

status_line() { # status_line NAME OK DETAIL
	if [ "$2" = yes ]; then printf '  %-24s running   %s\n' "$1" "$3"; else printf '  %-24s STOPPED   %s\n' "$1" "$3"; fi
}

cmd_status() {
	local out
	out=$(status_lines)
	echo "$out"
	! grep -q STOPPED <<<"$out"
}

status_lines() {
	yn() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }
	echo "run folder: $RUN"
	status_line mariadb "$(yn mariadb-admin --socket="$MYSQL_SOCK" ping)" "unix:$MYSQL_SOCK"
	status_line keystone "$(yn curl -sf "$KEYSTONE_URL")" "$KEYSTONE_URL"
	status_line neutron-server "$(yn curl -sf "$NEUTRON_URL")" "$NEUTRON_URL"
	ovn_status_lines
	# ovs-vswitchd too: the database alone answers for a chassis that forwards nothing.
	status_line "hv ovs (br-int)" "$(yn hv_ovs_up)" "unix:$HV_DB"
	status_line ovn-controller "$(yn alive "$RUN/hv/ovn-controller.pid")" "chassis hv1"
	hypervisor_status_lines
	for d in "$RUN"/vm*; do
		[ -d "$d" ] || continue
		local vm
		vm=$(basename "$d")
		status_line "$vm netns" "$(yn test -e "/run/netns/$vm")" "on $(vm_hv "$vm")"
		status_line "$vm ovs (br0)" "$(yn vm_ovs_up "$vm")" "unix:$d/ovs/db.sock"
		status_line "$vm relays" "$(yn ip netns exec "$vm" curl -sf "$NEUTRON_URL")" "127.0.0.1:5000,9696 inside $vm"
		if grep -q DOCKER_HOST "$d/env" 2>/dev/null; then
			status_line "$vm dockerd" "$(yn $DOCKER -H "unix://$d/docker.sock" version)" "unix://$d/docker.sock"
		fi
	done
}

cmd_logs() {
	local which=${1:-}
	for f in "$LOGS"/*; do
		[ -f "$f" ] || continue
		case $f in *"$which"*) ;; *) continue ;; esac
		echo "==> $f <=="
		tail -n "${STACK_LOG_LINES:-40}" "$f"
	done
}

# One component down or up again, for outage tests and operators.
cmd_component() {
	local verb=$1 what=${2:-}
	case "$verb:$what" in
	stop:neutron | stop:keystone)
		alive "$RUN/$what.pid" && kill -- "-$(cat "$RUN/$what.pid")" 2>/dev/null
		wait_for 20 "$what exit" bash -c "! kill -0 \$(cat '$RUN/$what.pid' 2>/dev/null) 2>/dev/null" || true
		;;
	start:neutron) start_neutron ;;
	start:keystone) start_keystone ;;
	stop:ovn-* | start:ovn-*) ovn_component "$verb" "$what" || die "usage: $verb ovn-nb|ovn-sb|ovn-nbI|ovn-sbI|ovn-nb-leader|ovn-sb-leader" ;;
	stop:vm*-ovsdb)
		local d=$RUN/${what%-ovsdb}/ovs
		ovs-appctl -t "$d/ovsdb-server.ctl" exit >/dev/null 2>&1 || true
		wait_for 10 "ovsdb exit" bash -c "! kill -0 \$(cat '$d/ovsdb-server.pid' 2>/dev/null) 2>/dev/null" || true
		;;
	start:vm*-ovsdb)
		local vm=${what%-ovsdb} d=$RUN/${what%-ovsdb}/ovs
		alive "$d/ovsdb-server.pid" && return 0
		ovsdb-server --remote="punix:$d/db.sock" --pidfile="$d/ovsdb-server.pid" --detach \
			--unixctl="$d/ovsdb-server.ctl" -vconsole:off --log-file="$LOGS/ovsdb-server-$vm.log" "$d/conf.db"
		;;
	start:vm*-dockerd)
		# One VM's dockerd, and nothing else: tests that restart it must not touch the
		# VMs other tests hold (a whole "up" sets every VM's eth0 as the stack wants it).
		local vm=${what%-dockerd}
		[ -e "/run/netns/$vm" ] || die "start $what: $vm does not run"
		start_vm_docker "$vm"
		;;
	stop:hv*-ovn-controller) stop_ovn_controller "${what%-ovn-controller}" ;;
	stop:hv[2-9]) stop_empty_hv "$what" ;;
	start:hv*-ovn-controller) start_ovn_controller_connected "${what%-ovn-controller}" ;;
	*) die "usage: $verb neutron|keystone|ovn-nb|ovn-sb|ovn-nbI|ovn-sbI|ovn-nb-leader|ovn-sb-leader|vmN-ovsdb|hvK-ovn-controller|hvK" ;;
	esac
	log "$verb $what: done"
}

[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces and starts system daemons)"
case ${1:-} in
up) shift; cmd_up "$@" ;;
down) shift; cmd_down "$@" ;;
status) cmd_status ;;
stop | start) cmd_component "$@" ;;
logs) shift; cmd_logs "$@" ;;
hypervisors) shift; cmd_hypervisors "$@" ;;
migrate) shift; cmd_migrate "$@" ;;
*) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
