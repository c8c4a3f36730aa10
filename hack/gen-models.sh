#!/usr/bin/env bash
# Regenerates the OVSDB models from the schemas installed by Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
cp /usr/share/openvswitch/vswitch.ovsschema internal/ovsdb/vswitch/
cp /usr/share/ovn/ovn-nb.ovsschema internal/ovsdb/nbdb/
go generate ./internal/ovsdb/...
gofmt -l internal/ovsdb || true
