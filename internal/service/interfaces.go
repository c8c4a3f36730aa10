package service

import (
	"context"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Interfaces lists the VM's container interfaces from the local state: it needs no
// credentials, and answers while Neutron does not.
func (s *Service) Interfaces(ctx context.Context) ([]api.Interface, error) {
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	atts, err := recs.Attachments(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Interface, 0, len(atts))
	for _, a := range atts {
		out = append(out, interfaceOf(a))
	}
	return out, nil
}

func interfaceOf(a *state.Attachment) api.Interface {
	return api.Interface{
		Container: a.Container, Name: a.ContainerName, Sandbox: a.Owner, Network: a.NetworkName,
		NetworkID: a.NetworkID, Interface: a.IfName, VLAN: a.VLAN, MAC: a.MAC, IPs: a.IPs, Gateways: a.Gateways,
		MTU: a.MTU, Port: a.PortID, HostIf: a.HostIf, State: stateOf(a), Mode: a.Mode, Pool: a.Pool,
		Created: a.Created, Error: a.Error, Note: a.Note,
	}
}

// stateOf says where an interface stands, in the words of its holder: the phases of
// an attach or detach in progress, else what it is at rest.
func stateOf(a *state.Attachment) string {
	if a.PID != 0 || a.Phase != state.PhaseReady {
		return string(a.Phase)
	}
	switch a.OwnerKind {
	case state.OwnerEndpoint:
		if a.Container != "" {
			return "attached"
		}
		return "ready"
	case state.OwnerParked:
		return "stopped (port kept)"
	case state.OwnerReleasing:
		return "releasing"
	case state.OwnerReserved:
		return "reserved"
	case state.OwnerPool:
		return "ready (pool)"
	}
	return string(a.Phase)
}
