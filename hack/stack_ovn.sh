# hack/stack_ovn.sh: OVN's central part for hack/stack.sh (sourced, not run): the Northbound and
# Southbound databases and ovn-northd, either standalone (one of each, the default) or as a cloud
# runs them: each database a Raft cluster of N members (an ovsdb-server each, on its own unix
# socket, Raft between them over loopback TCP) and an ovn-northd beside each member (one holds
# the Southbound lock and works, the others stand by). Clients are given every member.
#
# The shape is chosen by `up` (--ovn-cluster N) and kept in $RUN/ovn/members; changing it needs
# the stack down first. A standalone database becomes the cluster's first contents, and a
# cluster's the standalone database again, so that Neutron's networks and OVN's agree across
# shapes.

OVN_MEMBERS_FILE=$RUN/ovn/members
NB_RAFT_PORT=6650 # member i listens for Raft on 127.0.0.1:NB_RAFT_PORT+i
SB_RAFT_PORT=6660

ovn_members() { cat "$OVN_MEMBERS_FILE" 2>/dev/null || echo 1; }

# ovn_remotes: sets NB_REMOTE and SB_REMOTE, the connection strings every client gets.
ovn_remotes() {
	local n i nb="" sb=""
	n=$(ovn_members)
	if [ "$n" -le 1 ]; then
		NB_REMOTE=unix:$NB_SOCK
		SB_REMOTE=unix:$SB_SOCK
		return
	fi
	for i in $(seq "$n"); do
		nb+=${nb:+,}unix:$RUN/ovn/nb$i/db.sock
		sb+=${sb:+,}unix:$RUN/ovn/sb$i/db.sock
	done
	NB_REMOTE=$nb
	SB_REMOTE=$sb
}

member_dir() { echo "$RUN/ovn/$1$2"; } # member_dir nb|sb I
db_name() { [ "$1" = nb ] && echo OVN_Northbound || echo OVN_Southbound; }

# ovn_central_alive: whether anything of OVN's central part runs, in either shape.
ovn_central_alive() {
	local f
	for f in "$RUN"/ovn/*.pid "$RUN"/ovn/nb*/ovsdb-server.pid "$RUN"/ovn/sb*/ovsdb-server.pid; do
		[ -f "$f" ] && alive "$f" && return 0
	done
	return 1
}

# ovn_shape N: makes the databases on disk the shape N asks, converting what is there. The
# central part must be stopped.
ovn_shape() {
	local want=$1 have db i
	have=$(ovn_members)
	mkdir -p "$RUN/ovn"
	[ "$want" = "$have" ] && [ -f "$OVN_MEMBERS_FILE" ] && return 0
	for db in nb sb; do
		local standalone=$RUN/ovn/ovn${db}_db.db
		if [ "$want" -gt 1 ]; then
			rm -rf "$RUN/ovn/$db"[0-9]*
			local src=/usr/share/ovn/ovn-$db.ovsschema
			if [ "$have" -gt 1 ] && [ -f "$(member_dir "$db" 1)/db" ]; then
				# From one cluster size to another: through a standalone copy.
				ovsdb-tool cluster-to-standalone "$standalone" "$(member_dir "$db" 1)/db"
			fi
			[ -f "$standalone" ] && src=$standalone
			local port=$NB_RAFT_PORT
			[ "$db" = sb ] && port=$SB_RAFT_PORT
			for i in $(seq "$want"); do
				mkdir -p "$(member_dir "$db" "$i")"
				if [ "$i" = 1 ]; then
					ovsdb-tool create-cluster "$(member_dir "$db" 1)/db" "$src" "tcp:127.0.0.1:$((port + 1))" 2>>"$LOGS/ovn-ctl.log"
				else
					ovsdb-tool join-cluster "$(member_dir "$db" "$i")/db" "$(db_name "$db")" \
						"tcp:127.0.0.1:$((port + i))" "tcp:127.0.0.1:$((port + 1))"
				fi
			done
			[ -f "$standalone" ] && mv "$standalone" "$standalone.before-cluster"
		elif [ -f "$(member_dir "$db" 1)/db" ]; then
			rm -f "$standalone"
			ovsdb-tool cluster-to-standalone "$standalone" "$(member_dir "$db" 1)/db"
			rm -rf "$RUN/ovn/$db"[0-9]* "$standalone.before-cluster"
		fi
	done
	echo "$want" >"$OVN_MEMBERS_FILE"
	ovn_remotes
}

start_member() { # start_member nb|sb I
	local d
	d=$(member_dir "$1" "$2")
	alive "$d/ovsdb-server.pid" && return 0
	# No --monitor: a member a test stops stays stopped until it is started again.
	ovsdb-server --remote="punix:$d/db.sock" --pidfile="$d/ovsdb-server.pid" --detach \
		--unixctl="$d/ovsdb-server.ctl" -vconsole:off --log-file="$LOGS/ovsdb-server-$1$2.log" "$d/db"
}

stop_member() { # stop_member nb|sb I
	local d
	d=$(member_dir "$1" "$2")
	alive "$d/ovsdb-server.pid" || return 0
	ovs-appctl -t "$d/ovsdb-server.ctl" exit >/dev/null 2>&1 || kill "$(cat "$d/ovsdb-server.pid")" 2>/dev/null || true
	wait_for 10 "$1$2 exit" bash -c "! kill -0 \$(cat '$d/ovsdb-server.pid' 2>/dev/null) 2>/dev/null" ||
		kill -9 "$(cat "$d/ovsdb-server.pid")" 2>/dev/null || true
}

# leader_of nb|sb: the member that leads the cluster now (empty when none does).
leader_of() {
	local i d
	for i in $(seq "$(ovn_members)"); do
		d=$(member_dir "$1" "$i")
		alive "$d/ovsdb-server.pid" || continue
		if ovs-appctl -t "$d/ovsdb-server.ctl" cluster/status "$(db_name "$1")" 2>/dev/null | grep -qx 'Role: leader'; then
			echo "$i"
			return
		fi
	done
}

start_ovn_central() {
	local n i
	n=$(ovn_members)
	if [ "$n" -le 1 ]; then
		if alive "$RUN/ovn/ovnnb_db.pid" && alive "$RUN/ovn/ovnsb_db.pid" && alive "$RUN/ovn/ovn-northd.pid"; then
			return 0
		fi
		ovn_ctl start_northd >>"$LOGS/ovn-ctl.log" 2>&1 || die "OVN central did not start (see $LOGS/ovn-ctl.log)"
	else
		for i in $(seq "$n"); do
			start_member nb "$i"
			start_member sb "$i"
		done
		for i in $(seq "$n"); do
			alive "$RUN/ovn/northd$i.pid" && continue
			ovn-northd --ovnnb-db="$NB_REMOTE" --ovnsb-db="$SB_REMOTE" --pidfile="$RUN/ovn/northd$i.pid" \
				--unixctl="$RUN/ovn/northd$i.ctl" --detach -vconsole:off --log-file="$LOGS/ovn-northd-$i.log"
		done
		wait_for 30 "sb leader" bash -c "ovn-sbctl --db='$SB_REMOTE' --timeout=2 show >/dev/null"
	fi
	wait_for 30 nb nbctl --timeout=2 show || die "OVN NB does not answer"
}

stop_ovn_central() {
	local i
	if [ -f "$RUN/ovn/ovnnb_db.pid" ]; then ovn_ctl stop_northd >>"$LOGS/ovn-ctl.log" 2>&1 || true; fi
	for i in $(seq "$(ovn_members)"); do
		if alive "$RUN/ovn/northd$i.pid"; then
			ovs-appctl -t "$RUN/ovn/northd$i.ctl" exit >/dev/null 2>&1 || kill "$(cat "$RUN/ovn/northd$i.pid")" 2>/dev/null || true
		fi
		[ -d "$(member_dir nb "$i")" ] && stop_member nb "$i"
		[ -d "$(member_dir sb "$i")" ] && stop_member sb "$i"
	done
	return 0
}

ovn_status_lines() {
	local n i role
	n=$(ovn_members)
	if [ "$n" -le 1 ]; then
		status_line ovn-nb "$(yn nbctl --timeout=2 show)" "unix:$NB_SOCK"
		status_line ovn-sb "$(yn ovn-sbctl --db="unix:$SB_SOCK" --timeout=2 show)" "unix:$SB_SOCK"
		status_line ovn-northd "$(yn alive "$RUN/ovn/ovn-northd.pid")" ""
		return
	fi
	local nbl sbl
	nbl=$(leader_of nb)
	sbl=$(leader_of sb)
	for i in $(seq "$n"); do
		role=""
		[ "$i" = "$nbl" ] && role=" (leader)"
		status_line "ovn-nb$i" "$(yn alive "$(member_dir nb "$i")/ovsdb-server.pid")" "unix:$(member_dir nb "$i")/db.sock raft 127.0.0.1:$((NB_RAFT_PORT + i))$role"
		role=""
		[ "$i" = "$sbl" ] && role=" (leader)"
		status_line "ovn-sb$i" "$(yn alive "$(member_dir sb "$i")/ovsdb-server.pid")" "unix:$(member_dir sb "$i")/db.sock raft 127.0.0.1:$((SB_RAFT_PORT + i))$role"
		status_line "ovn-northd$i" "$(yn alive "$RUN/ovn/northd$i.pid")" ""
	done
}

# ovn_component VERB WHAT: stop|start of ovn-nb / ovn-sb (the whole database), ovn-nbI /
# ovn-sbI (one member), or stop of ovn-nb-leader / ovn-sb-leader (the member that leads now:
# its number is printed).
ovn_component() {
	local verb=$1 what=$2 n db i
	n=$(ovn_members)
	case $what in
	ovn-nb | ovn-sb)
		db=${what#ovn-}
		if [ "$n" -le 1 ]; then
			[ "$db" = nb ] || die "$verb $what: only ovn-nb can be stopped in the standalone shape"
			if [ "$verb" = stop ]; then
				ovn_ctl stop_nb_ovsdb >>"$LOGS/ovn-ctl.log" 2>&1
			else
				nbctl --timeout=2 show >/dev/null 2>&1 && return 0
				ovn_ctl start_nb_ovsdb >>"$LOGS/ovn-ctl.log" 2>&1
				wait_for 20 nb nbctl --timeout=2 show || die "OVN NB did not come back"
			fi
			return
		fi
		for i in $(seq "$n"); do "${verb}_member" "$db" "$i"; done
		;;
	ovn-nb-leader | ovn-sb-leader)
		[ "$verb" = stop ] || die "start $what: start ovn-nb or ovn-sb (every member not running)"
		[ "$n" -gt 1 ] || die "stop $what: OVN runs standalone (up --ovn-cluster 3)"
		db=${what#ovn-}
		db=${db%-leader}
		i=$(leader_of "$db")
		[ -n "$i" ] || die "stop $what: no member leads now"
		stop_member "$db" "$i"
		echo "ovn-$db$i"
		;;
	ovn-nb[0-9] | ovn-sb[0-9])
		db=${what:4:2}
		i=${what:6}
		[ "$i" -le "$n" ] || die "$verb $what: the cluster has $n members"
		"${verb}_member" "$db" "$i"
		;;
	*) return 1 ;;
	esac
}
