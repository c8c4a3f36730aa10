#!/usr/bin/env bash
# hack/cri.sh: a CRI runtime in a VM of the sandbox stack (hack/stack.sh), for the CNI
# plugin's end-to-end tests: containerd 2.x with its CRI plugin, driven by crictl as the
# kubelet drives it.
#
#   hack/cri.sh install               build containerd, its runc shim, ctr, crictl and runc from the Go module proxy (once)
#   hack/cri.sh up VM CNI_BIN_DIR     start containerd in the VM: its own root, state and socket ($RUN/VM/containerd.sock),
#                                     CNI plugins from CNI_BIN_DIR, network configurations in $RUN/VM/cni/net.d
#   hack/cri.sh down VM               stop it (its pods' netns go with stopp/rmp, not here)
#   hack/cri.sh env VM                the VM's CRI settings, as shell variables
#
# Debian's runc 1.1.5 fails under containerd 2.4 ("can't get final child's PID from pipe"), so
# runc comes from the module proxy too. The pod sandboxes run a pause image made from the
# stack's static busybox: nothing is pulled from a registry.
set -euo pipefail

RUN=${OVN_DOCKER_STACK_DIR:-/var/lib/ovn-docker-stack}
CRI=${OVN_DOCKER_CRI_DIR:-/var/cache/ovn-docker-cri}
BIN=$CRI/bin
CONTAINERD_VERSION=v2.4.2
CRICTL_VERSION=v1.37.0
RUNC_VERSION=v1.5.3
PAUSE=docker.io/library/pause:local
DOCKER=/usr/bin/docker

log() { printf '%s cri: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "$*"
	exit 1
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

# built NAME VERSION: the binary is there and was built from that version.
built() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.version" 2>/dev/null)" = "$2" ]; }

build() { # build NAME VERSION PACKAGE [CGO]
	local name=$1 version=$2 pkg=$3 cgo=${4:-0}
	built "$name" "$version" && return 0
	log "building $name $version"
	local t0=$SECONDS
	GOBIN=$BIN CGO_ENABLED=$cgo GOFLAGS=-mod=mod go install "$pkg@$version" ||
		die "go install $pkg@$version failed"
	echo "$version" >"$BIN/.$name.version"
	log "built $name in $((SECONDS - t0)) s"
}

cmd_install() {
	mkdir -p "$BIN"
	build containerd "$CONTAINERD_VERSION" github.com/containerd/containerd/v2/cmd/containerd
	build containerd-shim-runc-v2 "$CONTAINERD_VERSION" github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
	build ctr "$CONTAINERD_VERSION" github.com/containerd/containerd/v2/cmd/ctr
	build crictl "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
	# runc links libseccomp only with the seccomp tag; without it, it needs cgo for its
	# nsenter part alone.
	build runc "$RUNC_VERSION" github.com/opencontainers/runc 1
}

cmd_env() {
	local vm=$1 d=$RUN/$1
	cat <<EOF
CRI_BIN=$BIN
CRI_SOCK=$d/containerd.sock
CRI_CONF_DIR=$d/cni/net.d
CRI_LOG=$RUN/logs/containerd-$vm.log
EOF
}

write_config() { # write_config VM CNI_BIN_DIR
	local vm=$1 cnibin=$2 d=$RUN/$1
	mkdir -p "$d/containerd/root" "$d/containerd/state" "$d/cni/net.d" "$d/cni/cache"
	cat >"$d/containerd.toml" <<EOF
version = 3
root = "$d/containerd/root"
state = "$d/containerd/state"

[grpc]
  address = "$d/containerd.sock"

[ttrpc]
  address = "$d/containerd.sock.ttrpc"

[plugins."io.containerd.cri.v1.runtime"]
  # Without it runc fails here: "failed to update /proc/self/oom_score_adj: Permission denied".
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$cnibin"]
    conf_dir = "$d/cni/net.d"
    cache_dir = "$d/cni/cache"
    # lo comes up without the loopback plugin: the plugin directory holds ovn-docker-cni only.
    use_internal_loopback = true

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "$PAUSE"
EOF
}

# pause_image: the sandbox image, from the VM's dockerd's busybox:local (hack/stack.sh up
# --docker), saved and imported into containerd's k8s.io namespace.
pause_image() {
	local vm=$1 d=$RUN/$1
	"$BIN/ctr" -a "$d/containerd.sock" -n k8s.io images ls -q | grep -qx "$PAUSE" && return 0
	local sock=unix://$d/docker.sock tmp
	$DOCKER -H "$sock" image inspect busybox:local >/dev/null 2>&1 || die "$vm has no busybox:local (stack up --docker)"
	tmp=$(mktemp -d)
	local cid
	cid=$($DOCKER -H "$sock" create busybox:local)
	$DOCKER -H "$sock" export "$cid" | $DOCKER -H "$sock" import --change 'ENTRYPOINT ["/bin/sleep","2147483647"]' - "$PAUSE" >/dev/null
	$DOCKER -H "$sock" rm "$cid" >/dev/null
	$DOCKER -H "$sock" save "$PAUSE" -o "$tmp/pause.tar"
	"$BIN/ctr" -a "$d/containerd.sock" -n k8s.io images import "$tmp/pause.tar" >/dev/null
	rm -rf "$tmp"
}

cmd_up() {
	local vm=$1 cnibin=$2 d=$RUN/$1
	[ -e "/run/netns/$vm" ] || die "no VM $vm (hack/stack.sh up)"
	for b in containerd containerd-shim-runc-v2 ctr crictl runc; do
		[ -x "$BIN/$b" ] || die "$BIN/$b is missing: hack/cri.sh install"
	done
	write_config "$vm" "$cnibin"
	mkdir -p "$RUN/logs"
	if ! alive "$d/containerd.pid" || ! "$BIN/ctr" -a "$d/containerd.sock" version >/dev/null 2>&1; then
		# The shim and runc are found on PATH.
		nsenter --net="/run/netns/$vm" env PATH="$BIN:$PATH" setsid "$BIN/containerd" --config "$d/containerd.toml" \
			</dev/null >>"$RUN/logs/containerd-$vm.log" 2>&1 &
		echo $! >"$d/containerd.pid"
		local i
		for i in $(seq 1 600); do
			"$BIN/ctr" -a "$d/containerd.sock" version >/dev/null 2>&1 && break
			alive "$d/containerd.pid" || die "$vm: containerd exited (see $RUN/logs/containerd-$vm.log)"
			sleep 0.1
		done
		"$BIN/ctr" -a "$d/containerd.sock" version >/dev/null 2>&1 || die "$vm: containerd does not answer"
	fi
	pause_image "$vm"
	log "$vm: containerd answers on $d/containerd.sock"
}

cmd_down() {
	local vm=$1 d=$RUN/$1
	if alive "$d/containerd.pid"; then
		kill "$(cat "$d/containerd.pid")"
		local i
		for i in $(seq 1 200); do
			alive "$d/containerd.pid" || break
			sleep 0.1
		done
		alive "$d/containerd.pid" && kill -9 "$(cat "$d/containerd.pid")" 2>/dev/null || true
	fi
	rm -f "$d/containerd.pid"
}

case "${1:-}" in
install) cmd_install ;;
up) [ $# -eq 3 ] || die "usage: hack/cri.sh up VM CNI_BIN_DIR"; cmd_up "$2" "$3" ;;
down) [ $# -eq 2 ] || die "usage: hack/cri.sh down VM"; cmd_down "$2" ;;
env) [ $# -eq 2 ] || die "usage: hack/cri.sh env VM"; cmd_env "$2" ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
