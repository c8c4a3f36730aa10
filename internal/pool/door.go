package pool

import (
	"context"
	"log/slog"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// The warm path's door, for every front end and for processes that hold no Pools (the
// standalone CLI): a pool lives in the VM's state, where the agent keeps it filled, so
// any process of the VM may take from it. Nothing else takes a pool's interface.

// Fits says whether a pool's interface can serve req: not when it asks for addresses of
// its own or for port options (a pool's ports have Neutron's addresses and defaults),
// which only a port made for it has. A dns_name is given afterwards (engine.NamePort).
func Fits(req engine.Request) bool { return len(req.FixedIPs) == 0 && !req.Port.OwnPort() }

// Claim reserves for req.Owner a ready interface of req's pool (its network and security
// groups), to be put in place with Take. It returns nil when the pool has none, or when
// the request does not fit a pool's interface (see Fits).
func Claim(ctx context.Context, eng *engine.Engine, req engine.Request) (*state.Attachment, error) {
	if !Fits(req) {
		return nil, nil
	}
	return eng.Claim(ctx, Key(req.Network.ID, req.SecurityGroups), req)
}

// Take moves a claimed interface into req.NetNS as req.IfName: no Neutron call. On
// failure it is the pool's again.
func Take(ctx context.Context, eng *engine.Engine, attID string, req engine.Request) (*state.Attachment, error) {
	return eng.Take(ctx, attID, req)
}

// Reserve hands a ready interface of the pool of key to to, as it is (its pair left in
// the VM): Docker's IPAM, or the agent's run about to create a container on a Docker
// network. It returns nil when the pool has none.
func Reserve(ctx context.Context, eng *engine.Engine, key string, to engine.Holder, change func(*state.Attachment)) (*state.Attachment, error) {
	return eng.ClaimReady(ctx, key, to, change)
}

// Attach attaches from req's pool when it has a ready interface, else the cold way; it
// reports whether the pool served it.
func Attach(ctx context.Context, eng *engine.Engine, req engine.Request) (*state.Attachment, bool, error) {
	att, err := Claim(ctx, eng, req)
	if err != nil {
		return nil, false, err
	}
	if att != nil {
		got, err := Take(ctx, eng, att.ID, req)
		if err == nil {
			return got, true, nil
		}
		slog.Default().Warn("pool: a ready interface could not be taken; attaching the cold way", "attachment", att.ID, "err", err)
	}
	att, err = eng.Attach(ctx, req)
	return att, false, err
}

// Reserve is the package's Reserve for a declared pool of these pools only.
func (p *Pools) Reserve(ctx context.Context, key string, to engine.Holder, change func(*state.Attachment)) (*state.Attachment, error) {
	if !p.Declared(key) {
		return nil, nil
	}
	t0 := time.Now()
	a, err := Reserve(ctx, p.eng, key, to, change)
	if err == nil {
		p.count(key, a != nil, "warm", t0)
		if a != nil {
			p.took()
		} else {
			p.poke()
		}
	}
	return a, err
}
