#!/usr/bin/env bash
# Regenerates the OVSDB models (Open_vSwitch) from the schema installed by Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
cp /usr/share/openvswitch/vswitch.ovsschema internal/ovsdb/vswitch/
go generate ./internal/ovsdb/...
gofmt -l internal/ovsdb || true
