package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Attach gives the namespace r.NetNS an interface r.IfName on r.Network, from the
// network's pool when it has a ready one: a CNI runtime's ADD. The attachment is the
// runtime's (state.OwnerCNI): its DEL and GC release it. Asked again for an interface the owner already
// has, it answers with that one: the same ADD twice makes one port.
func (s *Service) Attach(ctx context.Context, r api.AttachRequest) (*api.Attachment, error) {
	switch {
	case r.Owner == "":
		return nil, api.Invalid(errors.New("attach: no owner"))
	case r.Network == "":
		return nil, api.Invalid(errors.New("attach: no network"))
	case r.NetNS == "" || r.IfName == "":
		return nil, api.Invalid(errors.New("attach: a network namespace and an interface name are needed"))
	}
	s.ran()
	if err := s.Preflight(ctx); err != nil {
		return nil, err
	}
	eng, err := s.Engine(ctx)
	if err != nil {
		return nil, err
	}
	if a, err := s.attachmentOf(ctx, eng, r.Owner, r.IfName); err != nil || a != nil {
		if a != nil && a.Phase == state.PhaseAttached {
			return s.attachmentResult(ctx, a), nil
		}
		if err == nil {
			err = api.Conflict(fmt.Errorf("%s of %s is being attached or released (attachment %s, %s)", r.IfName, r.Owner, a.ID, a.Phase))
		}
		return nil, err
	}
	nc, err := s.Neutron(ctx)
	if err != nil {
		return nil, err
	}
	n, _, err := s.findNetwork(ctx, nc, r.Network)
	if errors.Is(err, neutron.ErrNotFound) {
		return nil, api.NotFound(err)
	}
	if err != nil {
		return nil, err
	}
	if err := checkProjects(s.VMPort(), []*neutron.Network{n}); err != nil {
		return nil, err
	}
	sgs, err := nc.SecurityGroupIDs(ctx, r.SecurityGroups)
	if err != nil {
		return nil, err
	}
	popts, err := s.portOptions(ctx, nc, r.PortOptions, r.Hostname, sgs)
	if err != nil {
		return nil, err
	}
	if r.PoolMax > 0 {
		if err := s.declarePool(n, sgs, r.PoolMin, r.PoolMax); err != nil {
			return nil, api.Invalid(err)
		}
	}
	req := engine.Request{Owner: r.Owner, OwnerKind: state.OwnerCNI, Container: r.Container, ContainerName: r.ContainerName,
		Network: n, IfName: r.IfName, NetNS: r.NetNS, DefaultRoute: r.DefaultRoute, SecurityGroups: sgs,
		Port: forNetwork(popts, n, true, []*neutron.Network{n})}
	att, warm, err := s.attachFromPool(ctx, eng, req)
	if err != nil {
		return nil, fmt.Errorf("attach %s to network %s: %w", r.IfName, n.Name, err)
	}
	if r.Container != "" {
		// Named at once, in the state; the tags in Neutron (for operators) wait until no
		// run or ADD is starting: a Neutron call on the critical path of ADD costs it.
		portID, err := eng.Name(ctx, att.ID, r.Container, r.ContainerName)
		if err != nil {
			return nil, err
		}
		s.whenQuiet(func(ctx context.Context) {
			if err := eng.TagPort(ctx, portID, r.Container); err != nil && !errors.Is(err, neutron.ErrNotFound) {
				s.log.Warn("could not tag the Neutron port with the container", "port", portID, "err", err)
			}
		})
		att.Container, att.ContainerName = r.Container, r.ContainerName
	}
	if warm && req.Port.DNSName != "" {
		s.nameLater(eng, att.PortID, req.Port.DNSName)
	}
	return s.attachmentResult(ctx, att), nil
}

// Detach releases what r.Owner holds (only r.IfName when given). Nothing to release is
// no error: DEL may come twice, or for an ADD that never completed.
func (s *Service) Detach(ctx context.Context, r api.DetachRequest) error {
	if r.Owner == "" {
		return api.Invalid(errors.New("detach: no owner"))
	}
	eng, err := s.Engine(ctx)
	if err != nil {
		return err
	}
	atts, err := eng.Attachments(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range atts {
		if a.Owner == r.Owner && (r.IfName == "" || a.IfName == r.IfName) {
			if err := pool.Release(ctx, eng, a.ID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// attachmentOf is the owner's attachment of ifName, if any.
func (s *Service) attachmentOf(ctx context.Context, eng *engine.Engine, owner, ifName string) (*state.Attachment, error) {
	atts, err := eng.Attachments(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		if a.Owner == owner && a.IfName == ifName {
			return a, nil
		}
	}
	return nil, nil
}

// attachmentResult adds to an attachment what its container needs: the nameservers of
// its network's subnets.
func (s *Service) attachmentResult(ctx context.Context, a *state.Attachment) *api.Attachment {
	out := &api.Attachment{Interface: interfaceOf(a)}
	if nc, err := s.Neutron(ctx); err == nil {
		if n, _, err := s.findNetwork(ctx, nc, a.NetworkID); err == nil {
			for _, sub := range n.Subnets {
				out.DNS = append(out.DNS, sub.DNS...)
			}
		}
	}
	return out
}

// declarePool has the agent keep interfaces of n ready (a CNI configuration's "pool"),
// once: a pool already declared keeps its size (and a target Neutron has lowered).
// Without an agent there is nobody to keep them, and nothing is declared.
func (s *Service) declarePool(n *neutron.Network, sgs []string, min, max int) error {
	s.mu.Lock()
	live := s.pools
	s.mu.Unlock()
	if live == nil || live.Declared(pool.Key(n.ID, sgs)) {
		return nil
	}
	_, err := live.AddFor("cni", pool.Spec{Network: n, SecurityGroups: sgs, Min: min, Max: max})
	return err
}
