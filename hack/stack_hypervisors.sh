# hack/stack_hypervisors.sh: several hypervisors and VM migration for hack/stack.sh (sourced).
#
# hv1 is the root namespace's OVS ($RUN/hv). hv2..hvN are network namespaces, each with its own
# ovsdb-server + ovs-vswitchd (netdev) in $RUN/hvK and its own ovn-controller (chassis hvK). The
# chassis reach each other by Geneve over an underlay of their own: a Linux bridge ul0 in the
# namespace "underlay", MTU 1500 as in a real cloud, one veth per hypervisor. The userspace
# datapath sends tunnel packets out of the bridge that holds the tunnel address, so each
# hypervisor has a br-phy whose internal port carries 172.30.0.K and whose uplink is its veth
# to ul0. A VM's NIC (vmN-hv) lives in its hypervisor's namespace, on that br-int.

UNDERLAY_NS=underlay
UNDERLAY_NET=172.30.0
UNDERLAY_MTU=1500
# A restarted ovn-controller otherwise clears the chassis' flows as soon as it connects to
# ovs-vswitchd and puts them back once computed: running containers lose packets meanwhile
# (4 of a 10 ms ping seen here). With this, it computes first and swaps in one go.
OFCTRL_WAIT_MS=2000

hv_dir() { if [ "$1" = hv1 ]; then echo "$RUN/hv"; else echo "$RUN/$1"; fi; }
hv_db() { echo "$(hv_dir "$1")/db.sock"; }
hvk_vsctl() { local hv=$1; shift; ovs-vsctl --timeout=20 --db="unix:$(hv_db "$hv")" "$@"; }
# hv_exec HV CMD...: CMD in the hypervisor's network namespace (hv1: the root namespace).
hv_exec() { local hv=$1; shift; if [ "$hv" = hv1 ]; then "$@"; else ip netns exec "$hv" "$@"; fi; }
hv_ip() { local hv=$1; shift; if [ "$hv" = hv1 ]; then ip "$@"; else ip -n "$hv" "$@"; fi; }
# The hypervisors that exist: hv1 and every $RUN/hvK folder with its namespace.
hv_list() {
	echo hv1
	local d
	for d in "$RUN"/hv[0-9]*; do
		[ -d "$d" ] && [ -e "/run/netns/$(basename "$d")" ] && basename "$d"
	done | sort -V
}
# vm_hv VM: the hypervisor the VM runs on (hv1 for VMs started before hypervisors existed).
vm_hv() { cat "$RUN/$1/hypervisor" 2>/dev/null || echo hv1; }
hv_encap_ip() { echo "$UNDERLAY_NET.${1#hv}"; }
# hv1 keeps 127.0.0.1 until an underlay exists: a one-chassis stack needs no tunnel.
hv1_encap_ip() { if [ -e "/run/netns/$UNDERLAY_NS" ]; then hv_encap_ip hv1; else echo 127.0.0.1; fi; }

underlay_up() {
	if [ ! -e "/run/netns/$UNDERLAY_NS" ]; then
		ip netns add "$UNDERLAY_NS"
	fi
	ip -n "$UNDERLAY_NS" link show ul0 >/dev/null 2>&1 ||
		ip -n "$UNDERLAY_NS" link add ul0 mtu "$UNDERLAY_MTU" type bridge
	ip -n "$UNDERLAY_NS" link set ul0 up
}

# hv_uplink HV: br-phy with the tunnel address on its internal port, its uplink a veth to ul0.
hv_uplink() {
	local hv=$1 ip
	ip=$(hv_encap_ip "$hv")
	hvk_vsctl "$hv" --may-exist add-br br-phy -- set bridge br-phy datapath_type=netdev \
		other-config:disable-in-band=true
	if ! hv_ip "$hv" link show "$hv-ul" >/dev/null 2>&1; then
		ip -n "$UNDERLAY_NS" link del "ul-$hv" >/dev/null 2>&1 || true
		ip link add "$hv-ul" mtu "$UNDERLAY_MTU" type veth peer name "ul-$hv" mtu "$UNDERLAY_MTU"
		ip link set "ul-$hv" netns "$UNDERLAY_NS"
		[ "$hv" = hv1 ] || ip link set "$hv-ul" netns "$hv"
	fi
	ip -n "$UNDERLAY_NS" link set "ul-$hv" master ul0 up
	hv_ip "$hv" link set "$hv-ul" up
	hvk_vsctl "$hv" --may-exist add-port br-phy "$hv-ul"
	wait_for 10 "$hv br-phy" hv_ip "$hv" link show br-phy || die "$hv: br-phy did not appear"
	hv_ip "$hv" link set br-phy mtu "$UNDERLAY_MTU" up
	hv_ip "$hv" addr replace "$ip/24" dev br-phy
}

start_ovn_controller() { # start_ovn_controller HV
	local hv=$1 dir pre=()
	dir=$(hv_dir "$hv")
	alive "$dir/ovn-controller.pid" && return 0
	[ "$hv" = hv1 ] || pre=(nsenter --net="/run/netns/$hv")
	local logname=ovn-controller
	[ "$hv" = hv1 ] || logname=ovn-controller-$hv
	OVS_RUNDIR=$dir OVN_RUNDIR=$dir "${pre[@]}" ovn-controller "unix:$dir/db.sock" --pidfile="$dir/ovn-controller.pid" \
		--detach -vconsole:off --log-file="$LOGS/$logname.log"
}

chassis_up() { # chassis_up HV: the SB has the chassis with its tunnel address
	ovn-sbctl --db="$SB_REMOTE" --timeout=2 --bare --columns=ip find encap chassis_name="$1" | grep -qx "$2"
}

# start_hv hvK (K >= 2): the namespace, its OVS, br-int, br-phy on the underlay and ovn-controller.
start_hv() {
	local hv=$1 dir=$RUN/$1
	underlay_up
	[ -e "/run/netns/$hv" ] || ip netns add "$hv"
	ip -n "$hv" link set lo up
	start_ovs "$dir" "$hv"
	hvk_vsctl "$hv" --may-exist add-br br-int -- set bridge br-int datapath_type=netdev fail-mode=secure \
		other-config:disable-in-band=true
	hv_uplink "$hv"
	hvk_vsctl "$hv" set open . external_ids:ovn-remote="$SB_REMOTE" external_ids:ovn-encap-type=geneve \
		external_ids:ovn-encap-ip="$(hv_encap_ip "$hv")" external_ids:system-id="$hv" external_ids:hostname="$hv" \
		external_ids:ovn-bridge-datapath-type=netdev external_ids:ovn-ofctrl-wait-before-clear="$OFCTRL_WAIT_MS"
	start_ovn_controller "$hv"
	wait_for 30 chassis chassis_up "$hv" "$(hv_encap_ip "$hv")" ||
		die "ovn-controller did not register chassis $hv (see $LOGS/ovn-controller-$hv.log)"
}

# hv1_underlay: hv1 joins the underlay; its tunnel address moves from 127.0.0.1 to br-phy's.
# Its VMs' ports stay bound: nothing but the chassis' Encap row changes.
hv1_underlay() {
	underlay_up
	hv_uplink hv1
	hv_vsctl set open . external_ids:ovn-encap-ip="$(hv_encap_ip hv1)" external_ids:ovn-ofctrl-wait-before-clear="$OFCTRL_WAIT_MS"
	wait_for 30 "hv1 encap" chassis_up hv1 "$(hv_encap_ip hv1)" || die "chassis hv1 did not take its underlay address"
}

# hypervisors_up N: hv1 on the underlay and hv2..hvN running. Additive: running VMs stay put.
hypervisors_up() {
	local n=$1 k
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 9 ] || die "--hypervisors takes 1..9"
	[ "$n" -gt 1 ] || return 0
	hv1_underlay
	for k in $(seq 2 "$n"); do start_hv "hv$k"; done
}

stop_hv() { # stop_hv hvK (K >= 2)
	local hv=$1 dir=$RUN/$1
	if alive "$dir/ovn-controller.pid"; then
		OVN_RUNDIR=$dir ovn-appctl -t "$dir/ovn-controller.$(cat "$dir/ovn-controller.pid").ctl" exit >/dev/null 2>&1 ||
			kill "$(cat "$dir/ovn-controller.pid")" 2>/dev/null || true
		wait_for 10 "ovn-controller exit" bash -c "! kill -0 \$(cat '$dir/ovn-controller.pid' 2>/dev/null) 2>/dev/null" ||
			kill -9 "$(cat "$dir/ovn-controller.pid")" 2>/dev/null || true
	fi
	rm -f "$dir/ovn-controller.pid"
	stop_ovs "$dir" "$hv"
	ip netns del "$hv" >/dev/null 2>&1 || true
	ip -n "$UNDERLAY_NS" link del "ul-$hv" >/dev/null 2>&1 || true
	ovn-sbctl --db="$SB_REMOTE" --timeout=5 --if-exists chassis-del "$hv" >/dev/null 2>&1 || true
}

# hypervisors_down: every hvK, hv1's uplink and the underlay (the stack is going down).
hypervisors_down() {
	local d
	for d in "$RUN"/hv[0-9]*; do
		[ -d "$d" ] && stop_hv "$(basename "$d")"
	done
	ip link del hv1-ul >/dev/null 2>&1 || true
	ip link del br-phy >/dev/null 2>&1 || true
	ip netns del "$UNDERLAY_NS" >/dev/null 2>&1 || true
}

# vm_plug VM HV PORT_ID MAC: the VM's NIC end vmN-hv on HV's br-int, bound to the VM's port.
vm_plug() {
	local vm=$1 hv=$2 port_id=$3 mac=$4 h
	# The VM's NIC is on one br-int only: a record left on another (a VM that booted on
	# another hypervisor before) would have that chassis claim the VM's port too, and
	# the two would take it from each other every half second.
	for h in $(hv_list); do
		[ "$h" = "$hv" ] && continue
		[ -S "$(hv_db "$h")" ] && alive "$(hv_dir "$h")/ovsdb-server.pid" &&
			hvk_vsctl "$h" --if-exists del-port br-int "$vm-hv" >/dev/null 2>&1 || true
	done
	hvk_vsctl "$hv" --may-exist add-port br-int "$vm-hv" -- set interface "$vm-hv" \
		external_ids:iface-id="$port_id" external_ids:attached-mac="$mac" external_ids:iface-status=active \
		external_ids:vm-id="$vm"
	echo "$hv" >"$RUN/$vm/hypervisor"
	if [ -f "$RUN/$vm/env" ]; then
		sed -i '/^export STACK_VM_HYPERVISOR=/d' "$RUN/$vm/env"
		echo "export STACK_VM_HYPERVISOR=$hv" >>"$RUN/$vm/env"
	fi
}

# cmd_migrate VM HV: the VM moves while it runs. Its NIC leaves the old br-int and joins HV's with
# the same iface-id, then Neutron binds the port to HV (admin), which makes ML2/OVN point the
# port's requested-chassis at HV, so that HV's ovn-controller claims it. The VM itself, its OVS,
# dockerd and containers are untouched.
cmd_migrate() {
	local vm=${1:-} to=${2:-}
	[ -n "$vm" ] && [ -n "$to" ] || die "usage: migrate VM HV"
	[ -e "/run/netns/$vm" ] && [ -s "$RUN/$vm/port" ] || die "migrate: $vm does not run"
	[[ " $(hv_list | tr '\n' ' ') " == *" $to "* ]] || die "migrate: no hypervisor $to (have: $(hv_list | tr '\n' ' '))"
	local from port_id mac t0
	from=$(vm_hv "$vm")
	read -r port_id mac _ <"$RUN/$vm/port"
	if [ "$from" = "$to" ]; then
		log "$vm is on $to already"
		return 0
	fi
	# The admin token first: the VM is cut off from the network from the NIC's move until the
	# new chassis claims its port, and a password login is half a second of Keystone.
	local token
	token=$(admin_token) || die "migrate: no admin token from Keystone"
	t0=$(date +%s%N)
	hvk_vsctl "$from" --if-exists del-port br-int "$vm-hv"
	if [ "$to" = hv1 ]; then
		ip -n "$from" link set "$vm-hv" netns $$
	else
		hv_ip "$from" link set "$vm-hv" netns "$to"
	fi
	hv_ip "$to" link set "$vm-hv" up
	vm_plug "$vm" "$to" "$port_id" "$mac"
	local t1
	t1=$(date +%s%N)
	neutron_bind "$token" "$port_id" "$to" || die "migrate: Neutron did not bind $vm's port to $to"
	echo "$to" >"$RUN/$vm/bound-host"
	wait_for 30 "$vm claimed" port_on_chassis "$port_id" "$to" || die "migrate: $to did not claim $vm's port"
	log "$vm migrated $from -> $to: NIC moved in $(((t1 - t0) / 1000000)) ms, bound in $((($(date +%s%N) - t0) / 1000000)) ms"
}

admin_token() { # an admin token, scoped to project admin, from Keystone's X-Subject-Token header
	local body
	body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"%s"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}' "$(secret admin)")
	curl -sf -o /dev/null -D - -H 'Content-Type: application/json' -d @- "$KEYSTONE_URL/auth/tokens" <<<"$body" |
		sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: *\([^[:space:]]*\).*/\1/p' | grep .
}

neutron_bind() { # neutron_bind TOKEN PORT_ID HOST: the port's binding:host_id, as Nova sets it after a move
	curl -sf -o /dev/null -X PUT -H "X-Auth-Token: $1" -H 'Content-Type: application/json' \
		-d "{\"port\": {\"binding:host_id\": \"$3\"}}" "${NEUTRON_URL}v2.0/ports/$2"
}

port_on_chassis() { # port_on_chassis LSP HV: the SB binds LSP on chassis HV
	local ch
	ch=$(ovn-sbctl --db="$SB_REMOTE" --timeout=2 --bare --columns=chassis find port_binding logical_port="$1")
	[ -n "$ch" ] && [ "$(ovn-sbctl --db="$SB_REMOTE" --timeout=2 --bare --columns=name list chassis "$ch")" = "$2" ]
}

# cmd_hypervisors N: add hv2..hvN to a running stack (VMs stay where they are).
cmd_hypervisors() {
	[ -f "$RUN/stack.env" ] || die "hypervisors: the stack is not up"
	hypervisors_up "${1:-}"
	log "hypervisors: $(hv_list | tr '\n' ' ')"
}

hypervisor_status_lines() {
	[ -e "/run/netns/$UNDERLAY_NS" ] || return 0
	status_line "underlay (ul0)" "$(yn ip -n "$UNDERLAY_NS" link show ul0 up)" "$UNDERLAY_NET.0/24 mtu $UNDERLAY_MTU"
	local hv
	for hv in $(hv_list); do
		[ "$hv" = hv1 ] && continue
		status_line "$hv ovs (br-int)" "$(yn hvk_vsctl "$hv" --timeout=2 br-exists br-int)" "unix:$(hv_db "$hv")"
		status_line "$hv ovn-controller" "$(yn alive "$RUN/$hv/ovn-controller.pid")" "chassis $hv, encap $(hv_encap_ip "$hv")"
	done
}

ovn_controller_ctl() { # the control socket of HV's ovn-controller
	local dir
	dir=$(hv_dir "$1")
	echo "$dir/ovn-controller.$(cat "$dir/ovn-controller.pid" 2>/dev/null).ctl"
}

# stop_ovn_controller HV: as a service restart does it ("exit --restart"): the chassis and its
# port bindings stay in the SB, and the flows stay in ovs-vswitchd until the next one takes over.
stop_ovn_controller() {
	local hv=$1 dir
	dir=$(hv_dir "$hv")
	alive "$dir/ovn-controller.pid" || return 0
	ovn-appctl -t "$(ovn_controller_ctl "$hv")" exit --restart >/dev/null 2>&1 || kill "$(cat "$dir/ovn-controller.pid")"
	wait_for 10 "ovn-controller exit" bash -c "! kill -0 \$(cat '$dir/ovn-controller.pid' 2>/dev/null) 2>/dev/null" ||
		kill -9 "$(cat "$dir/ovn-controller.pid")" 2>/dev/null || true
	rm -f "$dir/ovn-controller.pid"
}

# start_ovn_controller_connected HV: started, and connected to the SB again.
start_ovn_controller_connected() {
	start_ovn_controller "$1"
	wait_for 30 "$1 ovn-controller" bash -c "ovn-appctl -t '$(ovn_controller_ctl "$1")' connection-status | grep -qx connected" ||
		die "$1: ovn-controller did not connect to the SB"
}

# stop_empty_hv hvK: a hypervisor leaves the stack, once no VM runs on it.
stop_empty_hv() {
	local hv=$1 d
	for d in "$RUN"/vm*; do
		[ -e "/run/netns/$(basename "$d")" ] && [ "$(vm_hv "$(basename "$d")")" = "$hv" ] &&
			die "stop $hv: $(basename "$d") runs on it (hack/stack.sh migrate $(basename "$d") hv1)"
	done
	stop_hv "$hv"
	rm -rf "${RUN:?}/$hv"
}
