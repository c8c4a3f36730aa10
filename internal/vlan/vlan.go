// Package vlan chooses the VLAN that identifies a container interface inside its VM. The
// tag only has to be unique within the VM: OVN on the hypervisor strips it and uses it,
// together with the VM's port, to find the container's logical port.
package vlan

import (
	"errors"
	"fmt"
)

// The usable 802.1Q IDs: 0 means "no tag" and 4095 is reserved.
const (
	Min = 1
	Max = 4094
)

// ErrExhausted says every VLAN of the VM is in use.
var ErrExhausted = errors.New("all 4094 VLANs of this VM are in use: remove containers or use another VM")

// Valid reports whether v is a usable VLAN ID.
func Valid(v int) bool { return v >= Min && v <= Max }

// Check returns an error naming v when it is not a usable VLAN ID.
func Check(v int) error {
	if !Valid(v) {
		return fmt.Errorf("vlan %d out of range %d..%d", v, Min, Max)
	}
	return nil
}

// Pick returns the first VLAN after last (wrapping around) that inUse rejects. Going
// round rather than taking the lowest free one keeps a just-released tag out of use for
// as long as possible, so stale flows or ARP entries of an old container never meet a
// new one.
func Pick(inUse func(int) bool, last int) (int, error) {
	if !Valid(last) {
		last = Max
	}
	for i := 1; i <= Max; i++ {
		v := (last-Min+i)%Max + Min
		if !inUse(v) {
			return v, nil
		}
	}
	return 0, ErrExhausted
}
