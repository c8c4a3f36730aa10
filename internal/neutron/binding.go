package neutron

import (
	"context"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
)

// SetHost binds the port to host (binding:host_id; admin only by default policy). In
// binding-profile mode a container port is bound where its VM's port is, and must follow
// it when the VM moves to another hypervisor.
func (c *Client) SetHost(ctx context.Context, portID, host string) error {
	opts := portsbinding.UpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{}, HostID: &host}
	if _, err := ports.Update(ctx, c.sc, portID, opts).Extract(); err != nil {
		return wrap(err, "bind port %s to host %s", portID, host)
	}
	return nil
}
