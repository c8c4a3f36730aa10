package docker

import (
	"context"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
)

// RunRemoved runs a container in the foreground and has Docker remove it, as
// `docker run --rm` does through the API: create it (auto-remove, with the endpoint
// settings of its networks), attach to its output, ask to be told of its removal, start
// it, and return its exit code once Docker has removed it and its output has ended.
// stdout and stderr may be nil (io.Discard). On failure the container is removed.
func (c *Client) RunRemoved(ctx context.Context, cfg *container.Config, hc *container.HostConfig,
	endpoints map[string]*network.EndpointSettings, stdout, stderr io.Writer) (code int, err error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	hcc := *hc
	hcc.AutoRemove = true
	cfgc := *cfg
	cfgc.AttachStdout, cfgc.AttachStderr = true, true
	resp, err := c.api.ContainerCreate(ctx, &cfgc, &hcc, &network.NetworkingConfig{EndpointsConfig: endpoints}, nil, "")
	if err != nil {
		return 0, fmt.Errorf("create container: %w", err)
	}
	id := resp.ID
	defer func() {
		if err == nil {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if rerr := c.api.ContainerRemove(rctx, id, container.RemoveOptions{Force: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
			err = fmt.Errorf("%w (and removing container %s failed: %v)", err, id, rerr)
		}
	}()
	att, err := c.api.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return 0, fmt.Errorf("attach to container %s: %w", id, err)
	}
	defer att.Close()
	copied := make(chan error, 1)
	go func() {
		var err error
		if cfgc.Tty {
			_, err = io.Copy(stdout, att.Reader)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, att.Reader)
		}
		copied <- err
	}()
	// Asked before the start, as the CLI does: a container that ends at once is not missed.
	resC, errC := c.api.ContainerWait(ctx, id, container.WaitConditionRemoved)
	if err := c.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return 0, fmt.Errorf("start container %s: %w", id, err)
	}
	return waitExit(ctx, id, resC, errC, copied)
}

// waitExit waits for the container's exit code, then for its output to be all copied.
func waitExit(ctx context.Context, id string, resC <-chan container.WaitResponse, errC <-chan error, copied <-chan error) (int, error) {
	var code int
	select {
	case res := <-resC:
		if res.Error != nil && res.Error.Message != "" {
			return int(res.StatusCode), fmt.Errorf("wait for container %s: %s", id, res.Error.Message)
		}
		code = int(res.StatusCode)
	case err := <-errC:
		return 0, fmt.Errorf("wait for container %s: %w", id, err)
	}
	select {
	case err := <-copied:
		if err != nil {
			return code, fmt.Errorf("output of container %s: %w", id, err)
		}
	case <-ctx.Done():
		return code, ctx.Err()
	}
	return code, nil
}

// CreateBuiltinNetwork creates a network of one of Docker's own drivers (macvlan, bridge)
// with Docker's default IPAM and the given subnet, and returns its ID.
func (c *Client) CreateBuiltinNetwork(ctx context.Context, name, driver string, options map[string]string, subnet string, labels map[string]string) (string, error) {
	ipam := &network.IPAM{}
	if subnet != "" {
		ipam.Config = []network.IPAMConfig{{Subnet: subnet}}
	}
	resp, err := c.api.NetworkCreate(ctx, name, network.CreateOptions{Driver: driver, Options: options, Labels: labels, IPAM: ipam})
	if err != nil {
		if cerrdefs.IsConflict(err) {
			return "", fmt.Errorf("create network %s: %w: %w", name, ErrConflict, err)
		}
		return "", fmt.Errorf("create network %s: %w", name, err)
	}
	return resp.ID, nil
}

// RemoveNetwork removes a network; one that does not exist is not an error.
func (c *Client) RemoveNetwork(ctx context.Context, ref string) error {
	if err := c.api.NetworkRemove(ctx, ref); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove network %s: %w", ref, err)
	}
	return nil
}
