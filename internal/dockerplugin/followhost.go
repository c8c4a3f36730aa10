package dockerplugin

import "context"

// hostFollower keeps binding-profile container ports bound where the VM is (a VM that
// moves to another hypervisor); *engine.Engine implements it.
type hostFollower interface {
	FollowHost(ctx context.Context) (int, error)
}

// followHost is the maintenance pass's step for a VM that moved: no process inside the VM
// sees the move, so each pass asks Neutron where the VM's port is bound.
func (p *Plugin) followHost(ctx context.Context) error {
	f, ok := p.cfg.Engine.(hostFollower)
	if !ok {
		return nil
	}
	n, err := f.FollowHost(ctx)
	if n > 0 {
		p.log.Info("container ports bound to the VM's new host", "ports", n)
	}
	return err
}
