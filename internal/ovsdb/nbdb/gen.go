// Package nbdb holds the libovsdb models of the OVN Northbound database, generated from
// the ovn-nb.ovsschema that Debian's ovn-common installs. Tests use it to check what
// Neutron wrote for a container's port.
package nbdb

//go:generate go run github.com/ovn-kubernetes/libovsdb/cmd/modelgen -p nbdb -o . ovn-nb.ovsschema
