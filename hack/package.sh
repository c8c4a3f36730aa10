#!/usr/bin/env bash
# Builds dist/ovn-docker_*.deb and dist/ovn-docker-*.rpm with nfpm: the static
# binaries, man pages and completions (hack/gendoc), the unit, the configuration file.
# nfpm runs through `go run` at a pinned version: a build tool, kept out of go.mod so
# that the product's module graph holds only what the product links.
set -euo pipefail
cd "$(dirname "$0")/.."
NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
GO=${GO:-go}

# The version: the last tag (v1.2.3 -> 1.2.3), else 0.0.0~git<commit time>.<commit>,
# which sorts in commit order for dpkg and rpm alike.
if tag=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
	version=${tag#v}
	version=${version//-/.}
else
	version="0.0.0~git$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S).$(git rev-parse --short=7 HEAD)"
fi
export VERSION=$version SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)

rm -rf dist
mkdir -p dist/bin dist/doc
ldflags="-s -w -X github.com/ovn-docker/ovn-docker/internal/cli.Version=$version"
CGO_ENABLED=0 $GO build -trimpath -ldflags "$ldflags" -o dist/bin/ovn-docker ./cmd/ovn-docker
CGO_ENABLED=0 $GO build -trimpath -ldflags "-s -w" -o dist/bin/ovn-docker-cni ./cmd/ovn-docker-cni
$GO run ./hack/gendoc -out dist/doc -version "$version"
gzip -9n dist/doc/man/*.1
{
	printf 'ovn-docker (%s-1) unstable; urgency=medium\n\n' "$version"
	printf '  * Built from commit %s.\n\n' "$(git rev-parse HEAD)"
	printf ' -- ovn-docker developers <ovn-docker@lists.ovn-docker.org>  %s\n' "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >dist/doc/changelog.Debian.gz

for p in deb rpm; do
	$GO run "$NFPM" package --config packaging/nfpm.yaml --packager "$p" --target dist/
done
ls -l dist/*.deb dist/*.rpm
