package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

// movingNeutron is the fake Neutron of a VM that moves: its port is bound to host, and the
// container ports to the host they were made with or SetHost last gave them.
type movingNeutron struct {
	fakeNeutron
	mu    sync.Mutex
	host  string
	bound map[string]string
	sets  int
}

func (n *movingNeutron) hostOf(id string) string {
	if h, ok := n.bound[id]; ok {
		return h
	}
	return testHost
}

func (n *movingNeutron) GetPort(ctx context.Context, id string) (*neutron.Port, error) {
	p, err := n.fakeNeutron.GetPort(ctx, id)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if id == n.w.vifID {
		p.HostID = n.host
	} else {
		p.HostID = n.hostOf(id)
	}
	return p, nil
}

func (n *movingNeutron) VMPorts(ctx context.Context, vifID string) ([]neutron.Port, error) {
	ps, err := n.fakeNeutron.VMPorts(ctx, vifID)
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range ps {
		ps[i].HostID = n.hostOf(ps[i].ID)
	}
	return ps, err
}

func (n *movingNeutron) CreatePort(ctx context.Context, r neutron.PortRequest) (*neutron.Port, error) {
	p, err := n.fakeNeutron.CreatePort(ctx, r)
	if err == nil {
		n.mu.Lock()
		n.bound[p.ID] = r.HostID
		n.mu.Unlock()
	}
	return p, err
}

func (n *movingNeutron) SetHost(_ context.Context, id, host string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.bound[id] = host
	n.sets++
	return nil
}

// TestFollowHost: in binding-profile mode, once the VM's port is bound to another host the
// container ports follow it, and ports made afterwards are bound there at once; in trunk
// mode nothing is asked of Neutron.
func TestFollowHost(t *testing.T) {
	mn := &movingNeutron{host: testHost, bound: map[string]string{}}
	h := newHarness(t, func(c *Config) {
		c.Mode = neutron.ModeBindingProfile
		mn.fakeNeutron = c.Neutron.(fakeNeutron)
		c.Neutron = mn
	})
	ctx := context.Background()
	a1 := h.attach(t, h.request("o1", "eth0"))
	if n, err := h.e.FollowHost(ctx); n != 0 || err != nil {
		t.Fatalf("FollowHost with the VM in place = %d, %v; want 0", n, err)
	}
	mn.mu.Lock()
	mn.host = "hv-other"
	mn.mu.Unlock()
	if n, err := h.e.FollowHost(ctx); n != 1 || err != nil {
		t.Fatalf("FollowHost after the move = %d, %v; want 1", n, err)
	}
	if got := mn.hostOf(a1.PortID); got != "hv-other" {
		t.Fatalf("the container port is bound to %q, want hv-other", got)
	}
	h.w.reset()
	h.attach(t, h.request("o2", "eth1"))
	prs := callsNamed(h.w.log(), "neutron.CreatePort")
	if len(prs) != 1 || prs[0].Args[0].(neutron.PortRequest).HostID != "hv-other" {
		t.Fatalf("a port made after the move: %+v, want it bound to hv-other", prs)
	}
	if n, err := h.e.FollowHost(ctx); n != 0 || err != nil {
		t.Fatalf("FollowHost with everything in place = %d, %v; want 0", n, err)
	}

	trunk := newHarness(t)
	trunk.attach(t, trunk.request("o", "eth0"))
	trunk.w.reset()
	if n, err := trunk.e.FollowHost(ctx); n != 0 || err != nil || len(trunk.w.log()) != 0 {
		t.Fatalf("trunk mode: FollowHost = %d, %v, calls %v; want nothing", n, err, trunk.w.log())
	}
}
