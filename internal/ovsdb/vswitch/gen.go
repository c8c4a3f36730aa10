// Package vswitch holds the libovsdb models of the Open_vSwitch database, generated
// from the vswitch.ovsschema that Debian's openvswitch-common installs. Regenerate with
// hack/gen-models.sh after copying a newer schema.
package vswitch

//go:generate go run github.com/ovn-kubernetes/libovsdb/cmd/modelgen -p vswitch -o . vswitch.ovsschema
