package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/engine"
	"github.com/ovn-docker/ovn-docker/internal/pool"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Remove releases a container's interfaces, then removes it and its sandbox. Given a
// sandbox whose container is already gone, it releases and removes the sandbox.
func (s *Service) Remove(ctx context.Context, r api.RemoveRequest) error {
	if r.Container == "" {
		return api.Invalid(errors.New("rm needs a container"))
	}
	dc, err := s.Docker(ctx)
	if err != nil {
		return err
	}
	eng, err := s.Engine(ctx)
	if err != nil {
		return err
	}
	ref := r.Container
	info, err := dc.Inspect(ctx, ref)
	if errors.Is(err, docker.ErrNotFound) {
		return api.NotFound(fmt.Errorf("no such container: %s", ref))
	}
	if err != nil {
		return err
	}
	app, sandbox := info, info.Labels[LabelSandbox]
	if info.Labels[LabelRole] == "sandbox" {
		sandbox = info.ID
		users, err := dc.List(ctx, LabelSandbox+"="+info.ID)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return api.Conflict(fmt.Errorf("%s is the network sandbox of container %s: remove that one", ref, users[0].Name))
		}
		app = docker.Info{}
	}
	if app.ID != "" && app.Running && !r.Force {
		return api.Conflict(fmt.Errorf("container %s is running: stop it first or use rm -f", ref))
	}
	if sandbox != "" {
		if err := s.release(ctx, eng, sandbox); err != nil {
			return fmt.Errorf("release the ports of %s: %w", ref, err)
		}
	}
	s.step("rm-released")
	if app.ID != "" {
		if err := dc.Remove(ctx, app.ID, true); err != nil {
			return err
		}
		s.step("rm-container-removed")
		if sandbox == "" {
			// On the agent's Docker networks: Docker gave its ports up to the plugin,
			// which parked them for the container; or, the agent away, they are still
			// the endpoints'. Either way nobody else will use them.
			if err := s.releaseContainer(ctx, eng, app.ID); err != nil {
				return fmt.Errorf("release the ports of %s: %w", ref, err)
			}
		}
	}
	if sandbox != "" {
		if err := dc.Remove(ctx, sandbox, true); err != nil {
			return err
		}
	}
	return nil
}

// release releases every attachment the owner holds, following its pool's policy.
func (s *Service) release(ctx context.Context, eng *engine.Engine, owner string) error {
	atts, err := eng.Attachments(ctx)
	if err != nil {
		return err
	}
	for _, a := range atts {
		if a.Owner != owner {
			continue
		}
		if err := pool.Release(ctx, eng, a.ID); err != nil {
			return err
		}
	}
	return nil
}

// releaseContainer releases the ports of a removed container that was on the agent's
// Docker networks: those parked for it, and (the agent away when Docker removed it)
// those its endpoints still hold.
func (s *Service) releaseContainer(ctx context.Context, eng *engine.Engine, container string) error {
	parked, err := eng.TakeParked(ctx, container)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range parked {
		errs = append(errs, pool.Release(ctx, eng, a.ID))
	}
	atts, err := eng.Attachments(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, a := range atts {
		if a.Container == container && a.OwnerKind == state.OwnerEndpoint && a.PID == 0 {
			errs = append(errs, pool.Release(ctx, eng, a.ID))
		}
	}
	return errors.Join(errs...)
}
