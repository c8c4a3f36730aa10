// Package testutil gives integration tests what they need from the machine: the local
// sandbox stack's settings, scratch network namespaces and private OVS instances. It is
// only imported by tests.
package testutil
