package service

import (
	"context"
	"sort"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// SetPools gives the service the agent's pools, for Pools and Status to report them
// live (how many are being filled, a target lowered by Neutron's refusals).
func (s *Service) SetPools(p *pool.Pools) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pools = p
}

// Pools lists the VM's pools of ready interfaces: the agent's, live; without an agent,
// as the last one declared them in the state.
func (s *Service) Pools(ctx context.Context) ([]api.Pool, error) {
	s.mu.Lock()
	live := s.pools
	s.mu.Unlock()
	if live != nil {
		st, err := live.Status(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]api.Pool, 0, len(st))
		for _, p := range st {
			ap := api.Pool{Key: p.Key, Network: p.Network, NetworkID: p.NetworkID, Min: p.Min, Max: p.Max,
				Target: p.Target, Ready: p.Ready, Filling: p.Filling}
			if p.Target < p.Min {
				ap.Reason = "Neutron refused more ports (no addresses left, or the port quota): tried again later"
			}
			out = append(out, ap)
		}
		return out, nil
	}
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	pols, err := recs.PoolPolicies(ctx)
	if err != nil {
		return nil, err
	}
	atts, err := recs.Attachments(ctx)
	if err != nil {
		return nil, err
	}
	var out []api.Pool
	for key, pol := range pols {
		p := api.Pool{Key: key, NetworkID: pol.Network, Min: pol.Min, Max: pol.Max, Target: pol.Min}
		for _, a := range atts {
			if a.Pool == key && a.OwnerKind == state.OwnerPool && a.Phase == state.PhaseReady {
				p.Ready++
			}
			if a.Pool == key && p.Network == "" && a.NetworkName != "" {
				p.Network = a.NetworkName
			}
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// attachFromPool is the warm door for an attach: through the agent's pools when it runs
// (they count the take and refill once the takes are over), else straight to the state's.
func (s *Service) attachFromPool(ctx context.Context, eng *engine.Engine, req engine.Request) (*state.Attachment, bool, error) {
	if live := s.livePools(); live != nil {
		return live.Attach(ctx, req)
	}
	return pool.Attach(ctx, eng, req)
}

// claimFromPool is attachFromPool's Claim.
func (s *Service) claimFromPool(ctx context.Context, eng *engine.Engine, req engine.Request) (*state.Attachment, error) {
	if live := s.livePools(); live != nil {
		return live.Claim(ctx, req)
	}
	return pool.Claim(ctx, eng, req)
}

// reserveFromPool is attachFromPool's Reserve: the agent's pools count what they hand
// out of the pools they keep.
func (s *Service) reserveFromPool(ctx context.Context, eng *engine.Engine, key string, to engine.Holder, change func(*state.Attachment)) (*state.Attachment, error) {
	if live := s.livePools(); live != nil && live.Declared(key) {
		return live.Reserve(ctx, key, to, change)
	}
	return pool.Reserve(ctx, eng, key, to, change)
}

func (s *Service) livePools() *pool.Pools {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pools
}
