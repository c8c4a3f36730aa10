package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

// hostBinder binds a port to a host; *neutron.Client implements it.
type hostBinder interface {
	SetHost(ctx context.Context, portID, host string) error
}

var _ hostBinder = (*neutron.Client)(nil)

// FollowHost keeps the VM's binding-profile container ports bound where the VM's own port
// is. OVN claims such a port only on the chassis its binding names, so once the VM moves to
// another hypervisor its containers are cut off until their ports follow. (A trunk's
// subports carry no host: OVN binds them wherever their parent is, with nothing to do.)
// It returns how many ports it bound anew.
func (e *Engine) FollowHost(ctx context.Context) (int, error) {
	if e.cfg.Mode != neutron.ModeBindingProfile {
		return 0, nil
	}
	binder, ok := e.cfg.Neutron.(hostBinder)
	if !ok {
		return 0, errors.New("follow the VM's host: the Neutron client cannot bind ports")
	}
	vm, err := e.cfg.Neutron.GetPort(ctx, e.cfg.VIFID)
	if err != nil {
		return 0, fmt.Errorf("the VM's port %s: %w", e.cfg.VIFID, err)
	}
	if vm.HostID == "" {
		return 0, nil // unbound in the middle of a move: nothing to follow yet
	}
	// Ports made from now on are bound there too.
	e.mu.Lock()
	e.host = vm.HostID
	e.mu.Unlock()
	ports, err := e.cfg.Neutron.VMPorts(ctx, e.cfg.VIFID)
	if err != nil {
		return 0, fmt.Errorf("the VM's container ports: %w", err)
	}
	n := 0
	var errs []error
	for _, p := range ports {
		// No host: a trunk's subport (the VM may mix modes), which OVN moves by itself.
		if p.HostID == "" || p.HostID == vm.HostID {
			continue
		}
		if err := binder.SetHost(ctx, p.ID, vm.HostID); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
