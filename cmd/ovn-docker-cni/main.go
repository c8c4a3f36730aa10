// Command ovn-docker-cni is ovn-docker's CNI plugin: a container runtime (containerd,
// CRI-O, podman) executes it for each pod interface, and it asks the VM's ovn-docker
// agent for the interface (see package cni). Install it in the runtime's CNI binary
// directory (/opt/cni/bin) with a network configuration of type "ovn-docker-cni".
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/ovn-docker/ovn-docker/internal/cni"
)

func main() {
	skel.PluginMainFuncs(cni.New().Funcs(), cni.Versions, cni.About)
}
