#!/usr/bin/env bash
# hack/resolved.sh: Debian's systemd-resolved for the test of setup's DNS move, unpacked
# into a folder of its own (installed as a package it would take over the machine's
# /etc/resolv.conf), and the system user it drops its privileges to. The test runs it
# inside one VM with a D-Bus of its own. Once per machine; the version is the installed
# systemd's, whose private library the daemon links against.
set -euo pipefail
dir=${OVN_DOCKER_RESOLVED_DIR:-/var/cache/ovn-docker-resolved}
getent passwd systemd-resolve >/dev/null ||
	useradd --system --no-create-home --home-dir /run/systemd --shell /usr/sbin/nologin systemd-resolve
[ -x "$dir/lib/systemd/systemd-resolved" ] && exit 0
version=$(dpkg-query -W -f='${Version}' systemd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
get() { apt-get download "systemd-resolved=$version" >/dev/null 2>&1; }
get || { apt-get update -q >/dev/null 2>&1 && get; } || {
	echo "resolved.sh: Debian serves no systemd-resolved $version (the installed systemd's)" >&2
	exit 1
}
mkdir -p "$dir"
dpkg-deb -x systemd-resolved_*.deb "$dir"
echo "systemd-resolved $version in $dir"
