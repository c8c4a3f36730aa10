package internal

// Temporary: pins modules in go.sum until the packages that use them exist.
import (
	_ "github.com/docker/docker/api/types/container"
	_ "github.com/docker/docker/api/types/mount"
	_ "github.com/docker/docker/api/types/strslice"
	_ "github.com/docker/docker/client"
	_ "github.com/docker/go-connections/nat"
	_ "github.com/docker/go-units"
	_ "github.com/docker/go-plugins-helpers/network"
	_ "github.com/docker/go-plugins-helpers/ipam"
	_ "github.com/gophercloud/gophercloud/v2/openstack"
	_ "github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	_ "github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/trunks"
	_ "github.com/ovn-kubernetes/libovsdb/client"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "github.com/containernetworking/plugins/pkg/ns"
	_ "github.com/containernetworking/cni/pkg/skel"
	_ "golang.org/x/sys/unix"
)
