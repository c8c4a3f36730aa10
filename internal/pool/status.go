package pool

import (
	"context"
	"slices"
)

// Status is a pool as it stands.
type Status struct {
	Key       string
	Network   string // its name
	NetworkID string
	Min, Max  int
	Target    int // Min, or lower while Neutron refuses more ports
	Ready     int
	Filling   int
}

// Status reports every declared pool.
func (p *Pools) Status(ctx context.Context) ([]Status, error) {
	p.mu.Lock()
	var out []Status
	for key, pl := range p.pools {
		out = append(out, Status{Key: key, Network: pl.spec.Network.Name, NetworkID: pl.spec.Network.ID,
			Min: pl.spec.Min, Max: pl.spec.Max, Target: pl.target, Filling: pl.filling})
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int {
		if a.Network != b.Network {
			if a.Network < b.Network {
				return -1
			}
			return 1
		}
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	for i := range out {
		n, err := p.Depth(ctx, out[i].Key)
		if err != nil {
			return nil, err
		}
		out[i].Ready = n
	}
	return out, nil
}
