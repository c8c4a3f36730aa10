// Package e2e holds the end-to-end tests that run against the sandbox stack of
// hack/stack.sh (build tag integration): real Keystone, Neutron, OVN, OVS and Docker.
package e2e
