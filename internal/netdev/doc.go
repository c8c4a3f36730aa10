// Package netdev plumbs one container interface: a veth pair whose host end
// stays in the caller's network namespace (the VM's, where OVS picks it up)
// and whose other end becomes the container's interface with Neutron's MAC,
// addresses, MTU and default routes.
//
// All kernel work goes through netlink and ioctls; namespace switches happen
// on a locked OS thread (ns.Do) so no other goroutine ever runs in the wrong
// namespace. Every operation either completes or undoes what it did.
//
// Both ends have TX checksum offload disabled: OVS's userspace datapath reads
// veths through AF_PACKET, and a packet the kernel hands over with a partial
// (offloaded) checksum would leave the VM with a wrong TCP/UDP checksum.
package netdev
