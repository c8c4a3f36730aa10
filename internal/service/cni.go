package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Check compares Owner's IfName with what its ADD answered (r.MAC, r.IPs) and with the
// world (engine.Verify): a Drift error lists every difference, one per line.
func (s *Service) Check(ctx context.Context, r api.CheckRequest) error {
	if r.Owner == "" || r.IfName == "" {
		return api.Invalid(errors.New("check: an owner and an interface name are needed"))
	}
	eng, err := s.Engine(ctx)
	if err != nil {
		return err
	}
	a, err := s.attachmentOf(ctx, eng, r.Owner, r.IfName)
	if err != nil {
		return err
	}
	if a == nil {
		return api.Drift(fmt.Errorf("%s of %s: no such attachment (released, or never made)", r.IfName, r.Owner))
	}
	var drift []string
	if r.MAC != "" {
		if mac, err := net.ParseMAC(r.MAC); err != nil || !strings.EqualFold(mac.String(), a.MAC) {
			drift = append(drift, fmt.Sprintf("the result's MAC %s is not the port's %s", r.MAC, a.MAC))
		}
	}
	for _, ip := range r.IPs {
		if !slices.Contains(a.IPs, ip) {
			drift = append(drift, fmt.Sprintf("the result's address %s is not the port's (%s)", ip, strings.Join(a.IPs, ", ")))
		}
	}
	live, err := eng.Verify(ctx, a.ID)
	if err != nil {
		return api.Unavailable(fmt.Errorf("check %s of %s: %w", r.IfName, r.Owner, err))
	}
	drift = append(drift, live...)
	if len(drift) > 0 {
		return api.Drift(fmt.Errorf("%s of %s: %s", r.IfName, r.Owner, strings.Join(drift, "; ")))
	}
	return nil
}

// Collect releases the CNI attachments whose owner starts with r.OwnerPrefix and that
// r.Keep does not name: a runtime's GC with its valid attachments. Attachments being
// made right now are left alone: their ADD has not answered, so the runtime cannot
// list them yet.
func (s *Service) Collect(ctx context.Context, r api.CollectRequest) (*api.CollectResult, error) {
	if r.OwnerPrefix == "" {
		return nil, api.Invalid(errors.New("collect: no owner prefix"))
	}
	eng, err := s.Engine(ctx)
	if err != nil {
		return nil, err
	}
	atts, err := eng.AttachmentsOfKind(ctx, state.OwnerCNI)
	if err != nil {
		return nil, err
	}
	keep := map[api.AttachmentKey]bool{}
	for _, k := range r.Keep {
		keep[k] = true
	}
	out := &api.CollectResult{Released: []api.AttachmentKey{}}
	var errs []error
	for _, a := range atts {
		k := api.AttachmentKey{Owner: a.Owner, IfName: a.IfName}
		if !strings.HasPrefix(a.Owner, r.OwnerPrefix) || keep[k] || a.Phase != state.PhaseAttached {
			continue
		}
		if err := pool.Release(ctx, eng, a.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		out.Released = append(out.Released, k)
	}
	return out, errors.Join(errs...)
}

// NetworkReady checks what an attach on network needs, as Status does (Keystone,
// Neutron, the VM's port and trunk, its OVSDB and bridge; not Docker: a CNI runtime's
// VM may have none), and that the network exists.
func (s *Service) NetworkReady(ctx context.Context, network string) error {
	if network == "" {
		return api.Invalid(errors.New("ready: no network"))
	}
	var failed []string
	for _, c := range s.checks(ctx, false) {
		if !c.OK {
			failed = append(failed, c.Name+": "+c.Detail)
		}
	}
	if len(failed) > 0 {
		return api.Unavailable(errors.New(strings.Join(failed, "; ")))
	}
	nc, err := s.Neutron(ctx)
	if err != nil {
		return api.Unavailable(err)
	}
	if _, _, err := s.findNetwork(ctx, nc, network); err != nil {
		if errors.Is(err, neutron.ErrNotFound) {
			return api.NotFound(err)
		}
		return api.Unavailable(err)
	}
	return nil
}
