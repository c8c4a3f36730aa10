package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ovn-docker/ovn-docker/internal/api"
)

func newPsCmd(a *app) *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List this VM's container interfaces: network, VLAN, MAC, IP, Neutron port",
		Long:  "List the container interfaces ovn-docker made in this VM, from its local state (no credentials needed).",
		Args:  cobra.NoArgs,
		RunE:  listRunE(a, &out, interfaceColumns, api.Backend.Interfaces),
	}
	addOutputFlags(cmd, &out)
	return cmd
}

// interfaceColumns are ps's columns.
var interfaceColumns = []column[api.Interface]{
	{head: "CONTAINER", key: "container", cell: func(r api.Interface) string { return short(r.Container) }},
	{head: "NAME", key: "name", cell: func(r api.Interface) string { return r.Name }},
	{head: "NETWORK", key: "network", cell: func(r api.Interface) string { return r.Network }},
	{head: "IFACE", key: "interface", cell: func(r api.Interface) string { return r.Interface }},
	{head: "VLAN", key: "vlan", cell: func(r api.Interface) string { return strconv.Itoa(r.VLAN) }},
	{head: "MAC", key: "mac", cell: func(r api.Interface) string { return r.MAC }},
	{head: "IP", key: "ips", cell: func(r api.Interface) string { return strings.Join(r.IPs, ",") }},
	{head: "PORT", key: "port_id", cell: func(r api.Interface) string { return r.Port }},
	{head: "STATE", key: "state", cell: func(r api.Interface) string {
		if r.Note != "" {
			return r.State + " (" + r.Note + ")"
		}
		return r.State
	}},
	{head: "NETWORK_ID", key: "network_id", cell: func(r api.Interface) string { return r.NetworkID }, extra: true},
	{head: "SANDBOX", key: "sandbox", cell: func(r api.Interface) string { return r.Sandbox }, extra: true},
	{head: "HOST_IFACE", key: "host_interface", cell: func(r api.Interface) string { return r.HostIf }, extra: true},
	{head: "MODE", key: "mode", cell: func(r api.Interface) string { return r.Mode }, extra: true},
	{head: "POOL", key: "pool", cell: func(r api.Interface) string { return r.Pool }, extra: true},
	{head: "MTU", key: "mtu", cell: func(r api.Interface) string { return strconv.Itoa(r.MTU) }, extra: true},
	{head: "GATEWAYS", key: "gateways", cell: func(r api.Interface) string { return strings.Join(r.Gateways, ",") }, extra: true},
	{head: "CREATED", key: "created", cell: func(r api.Interface) string { return r.Created.UTC().Format(time.RFC3339) }, extra: true},
	{head: "ERROR", key: "error", cell: func(r api.Interface) string { return r.Error }, extra: true},
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
