package engine

import (
	"context"
	"fmt"

	"github.com/ovn-docker/ovn-docker/internal/state"
)

// RestoreAccessPort puts a plumbed attachment's access port back on the VM's bridge, with
// its VLAN and external IDs, when its veth still exists but the port does not (the VM's
// OVS database lost it). The veth's container end may be in use: nothing else is touched.
func (e *Engine) RestoreAccessPort(ctx context.Context, attID string) error {
	att, err := e.Attachment(ctx, attID)
	if err != nil {
		return err
	}
	if att == nil {
		return fmt.Errorf("no attachment %s", attID)
	}
	if att.HostIf == "" || (att.Phase != state.PhaseReady && att.Phase != state.PhaseAttached) {
		return fmt.Errorf("attachment %s is not plumbed (phase %s)", attID, att.Phase)
	}
	if err := e.guard(ctx); err != nil {
		return err
	}
	if err := e.cfg.Switch.AddAccessPort(ctx, e.accessPort(att)); err != nil {
		return fmt.Errorf("restore access port %s tag %d on %s: %w", att.HostIf, att.VLAN, e.cfg.Bridge, err)
	}
	e.log.Info("restored access port", "attachment", att.ID, "port", att.HostIf, "vlan", att.VLAN)
	return nil
}
