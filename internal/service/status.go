package service

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

// maxLastErrors is how many recent failures Status keeps.
const maxLastErrors = 10

// health is what Status reports beyond its live checks: who answers, and what failed
// lately in the agent's background work (which no caller hears of otherwise).
type health struct {
	mu    sync.Mutex
	agent api.AgentInfo
	last  []string
}

// SetAgent says that an agent holds this service, and which.
func (s *Service) SetAgent(info api.AgentInfo) {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	s.health.agent = info
}

// NoteError keeps a failure of background work for Status.
func (s *Service) NoteError(what string, err error) {
	if err == nil {
		return
	}
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	line := fmt.Sprintf("%s %s: %s", time.Now().UTC().Format(time.RFC3339), what, s.cfg.Redactor.String(err.Error()))
	s.health.last = append(s.health.last, line)
	if n := len(s.health.last); n > maxLastErrors {
		s.health.last = s.health.last[n-maxLastErrors:]
	}
}

// Status checks what the VM's containers need, one line each: Keystone and Neutron, the
// VM's port and its trunk, the VM's Open vSwitch and bridge, dockerd; then the pools and
// the interfaces.
func (s *Service) Status(ctx context.Context) (*api.Status, error) {
	out := &api.Status{}
	s.health.mu.Lock()
	out.Agent = s.health.agent
	out.LastErrors = append([]string(nil), s.health.last...)
	s.health.mu.Unlock()
	out.Checks = s.checks(ctx, true)
	pools, err := s.Pools(ctx)
	if err != nil {
		return nil, err
	}
	out.Pools = pools
	ifs, err := s.Interfaces(ctx)
	if err != nil {
		return nil, err
	}
	out.Attachments = len(ifs)
	return out, nil
}

// checks tries, one line each, what the VM's containers need: Keystone and Neutron,
// the VM's port and its trunk, the VM's Open vSwitch and bridge, and dockerd when
// withDocker.
func (s *Service) checks(ctx context.Context, withDocker bool) []api.Check {
	var out []api.Check
	check := func(name string, err error, ok string) {
		c := api.Check{Name: name, OK: err == nil, Detail: ok}
		if err != nil {
			c.Detail = s.cfg.Redactor.String(err.Error())
		}
		out = append(out, c)
	}

	sess, err := s.Session(ctx)
	if err != nil {
		check("keystone", err, "")
	} else {
		check("keystone", nil, fmt.Sprintf("%s, project %s (%s)", sess.Provider.IdentityEndpoint, sess.ProjectID, sess.Method))
	}
	if err == nil {
		nc, err := s.Neutron(ctx)
		var vif string
		if err == nil {
			vif, err = s.VIF(ctx)
		}
		if err != nil {
			check("neutron", err, "")
		} else {
			check("neutron", nil, "VM port "+vif)
			mode, _ := neutron.ParseMode(s.cfg.Mode)
			t, terr := nc.TrunkOf(ctx, vif)
			switch {
			case terr != nil:
				check("trunk", terr, "")
			case t == nil && mode == neutron.ModeTrunk:
				check("trunk", nil, "none yet: the first container makes the VM's port a trunk parent")
			case t == nil:
				check("trunk", nil, "none (binding-profile mode)")
			default:
				check("trunk", nil, fmt.Sprintf("%s, %d subport(s)", t.ID, len(t.Subports)))
			}
		}
	}
	if sw, err := s.OVS(ctx); err != nil {
		check("ovsdb", err, "")
	} else {
		check("ovsdb", nil, s.cfg.OVSDB)
		ports, err := sw.Ports(ctx, s.cfg.Bridge)
		check("bridge", err, fmt.Sprintf("%s, %d port(s)", s.cfg.Bridge, len(ports)))
	}
	if !withDocker {
		return out
	}
	if dc, err := s.Docker(ctx); err != nil {
		check("docker", err, "")
	} else {
		_, err := dc.List(ctx, LabelVM)
		check("docker", err, "answers")
	}
	return out
}
