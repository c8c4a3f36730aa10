package docker

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/strslice"
)

// Resource limits of a sandbox: it only holds a network namespace open, but a Go
// process with a handful of threads needs some headroom.
const (
	sandboxMemory    = 32 << 20
	sandboxPidsLimit = 32
	sandboxCPUShares = 2
)

// SandboxSpec describes a sandbox container. DNS and host settings live here because
// containers that join the sandbox's network namespace share its /etc/resolv.conf,
// /etc/hosts and hostname, and Docker refuses them on such containers.
type SandboxSpec struct {
	Name       string
	Image      string   // usually the pause image
	Cmd        []string // the whole command line, entrypoint included; empty: the image's default
	Labels     map[string]string
	Hostname   string
	Domainname string
	DNS        []string
	DNSSearch  []string
	DNSOptions []string
	ExtraHosts []string          // "host:ip"
	Sysctls    map[string]string // net.* sysctls: they belong to the network namespace
	// RestartPolicy is the sandbox's; none is unless-stopped. Its container's, or one that
	// brings the sandbox back whenever Docker would bring back the container.
	RestartPolicy container.RestartPolicy
}

// sandboxConfig keeps the sandbox small and unprivileged; it gets no network of its
// own (NetworkMode none) since ovn-docker plumbs its namespace, and is restarted with
// the daemon (unless-stopped, unless told otherwise) so that its container finds it when
// Docker starts that again.
func sandboxConfig(s SandboxSpec) (*container.Config, *container.HostConfig) {
	restart := s.RestartPolicy
	if restart.Name == "" {
		restart = container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	}
	cfg := &container.Config{
		Image: s.Image,
		// As the entrypoint, Cmd replaces the image's entrypoint and command alike.
		Entrypoint: strslice.StrSlice(s.Cmd),
		Labels:     s.Labels,
		Hostname:   s.Hostname,
		Domainname: s.Domainname,
	}
	pids := int64(sandboxPidsLimit)
	hc := &container.HostConfig{
		NetworkMode:    "none",
		RestartPolicy:  restart,
		DNS:            s.DNS,
		DNSSearch:      s.DNSSearch,
		DNSOptions:     s.DNSOptions,
		ExtraHosts:     s.ExtraHosts,
		Sysctls:        s.Sysctls,
		ReadonlyRootfs: true,
		CapDrop:        strslice.StrSlice{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		Resources: container.Resources{
			Memory:    sandboxMemory,
			PidsLimit: &pids,
			CPUShares: sandboxCPUShares,
		},
	}
	return cfg, hc
}

// StartSandbox creates and starts a sandbox and returns it running, with its Pid set
// (see NetNSPath). On failure the container it created is removed.
func (c *Client) StartSandbox(ctx context.Context, s SandboxSpec) (_ Info, err error) {
	if s.Image == "" {
		return Info{}, fmt.Errorf("start sandbox %s: no image", s.Name)
	}
	cfg, hc := sandboxConfig(s)
	id, _, err := c.Create(ctx, s.Name, cfg, hc)
	if err != nil {
		return Info{}, fmt.Errorf("start sandbox: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		// Roll back even when ctx is what failed.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if rerr := c.Remove(rctx, id, true); rerr != nil {
			err = errors.Join(err, fmt.Errorf("roll back sandbox %s: %w", id, rerr))
		}
	}()
	if err := c.Start(ctx, id); err != nil {
		return Info{}, fmt.Errorf("start sandbox %s: %w", s.Name, err)
	}
	info, err := c.Inspect(ctx, id)
	if err != nil {
		return Info{}, fmt.Errorf("start sandbox %s: %w", s.Name, err)
	}
	if !info.Running || info.Pid == 0 {
		return Info{}, fmt.Errorf("start sandbox %s: it stopped right after starting (exit code %d)", s.Name, info.ExitCode)
	}
	return info, nil
}
