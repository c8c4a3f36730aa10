#!/usr/bin/env bash
# hack/registry.sh: Debian's docker-registry (the distribution registry) for the tests of
# pulls with credentials, unpacked into a folder of its own: installed as a package it
# would start a service on port 5000, Keystone's. Once per machine.
set -euo pipefail
dir=${OVN_DOCKER_REGISTRY_DIR:-/var/cache/ovn-docker-registry}
[ -x "$dir/usr/bin/docker-registry" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
apt-get download docker-registry >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get download docker-registry >/dev/null; }
mkdir -p "$dir"
dpkg-deb -x docker-registry_*.deb "$dir"
"$dir/usr/bin/docker-registry" --version
