#!/usr/bin/env bash
# Builds the packages (hack/package.sh) and checks them as a distribution would:
# lintian on the .deb (no error or warning), the .deb unpacked into a root of its own
# with its unit checked by systemd-analyze verify (any complaint fails, and the man page
# its Documentation= names must be in the package), the binary's version, the
# completions, the configuration file as shipped, and the .rpm's files and scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

need=()
command -v lintian >/dev/null || need+=(lintian)
command -v rpm >/dev/null || need+=(rpm)
if [ ${#need[@]} -gt 0 ]; then
	apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${need[@]}" >/tmp/package-check-apt.log 2>&1 ||
		{ apt-get -o DPkg::Lock::Timeout=900 update -q >>/tmp/package-check-apt.log 2>&1 &&
			apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${need[@]}" >>/tmp/package-check-apt.log 2>&1; } ||
		{ tail -20 /tmp/package-check-apt.log; exit 1; }
fi

hack/package.sh
deb=$(ls dist/*.deb)
rpmf=$(ls dist/*.rpm)

echo "--- lintian"
rc=0
out=$(lintian --fail-on error,warning --pedantic "$deb" 2>&1) || rc=$?
# As root lintian says so; that is all it may say.
out=$(grep -v '^running with root privileges' <<<"$out" || true)
[ $rc -eq 0 ] && [ -z "$out" ] || { echo "$out"; echo "lintian: exit $rc"; exit 1; }
echo "lintian: clean (pedantic)"

echo "--- the .deb in a root of its own"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
dpkg-deb -x "$deb" "$root"
# systemd-analyze needs the units the unit names (multi-user.target...): the host's.
mkdir -p "$root/usr/lib/systemd/system"
cp -an /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
out=$(MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" /usr/lib/systemd/system/ovn-docker.service 2>&1) ||
	{ echo "$out"; echo "systemd-analyze verify failed"; exit 1; }
[ -z "$out" ] || { echo "$out"; echo "systemd-analyze verify complained"; exit 1; }
echo "unit: verified"

version=$(dpkg-deb -f "$deb" Version)
got=$("$root/usr/bin/ovn-docker" --version)
[ "$got" = "ovn-docker ${version%-1}" ] || { echo "--version says '$got', the package is $version"; exit 1; }
echo "binary: $got"
"$root/usr/bin/ovn-docker" --config "$root/etc/ovn-docker/ovn-docker.conf" version >/dev/null ||
	{ echo "the shipped configuration file is refused"; exit 1; }
echo "configuration file: accepted"
bash -c "source '$root/usr/share/bash-completion/completions/ovn-docker' && complete -p ovn-docker" >/dev/null ||
	{ echo "bash completion does not load"; exit 1; }
echo "bash completion: loads"

echo "--- the .rpm"
files=$(rpm -qpl "$rpmf")
for f in /usr/bin/ovn-docker /usr/lib/cni/ovn-docker-cni /usr/lib/systemd/system/ovn-docker.service /etc/ovn-docker/ovn-docker.conf /usr/share/man/man1/ovn-docker.1.gz; do
	grep -qx "$f" <<<"$files" || { echo "$rpmf lacks $f"; exit 1; }
done
rpm -qp --configfiles "$rpmf" | grep -qx /etc/ovn-docker/ovn-docker.conf || { echo "rpm: the configuration file is not %config"; exit 1; }
rpm -qp --scripts "$rpmf" | grep -q 'systemctl --no-reload preset ovn-docker.service' || { echo "rpm: no post script"; exit 1; }
echo "rpm: $(basename "$rpmf") holds its files and scripts"
echo "packages: ok"
