// Package docker is the slice of the Docker Engine API that ovn-docker needs: a local
// pause image built from ovn-docker's own static binary, "sandbox" containers whose
// network namespace ovn-docker plumbs before the user's container starts in it, the
// container lifecycle calls the CLI drives, and the events the daemon reconciles on.
//
// All calls go through the Engine API with version negotiation, so a newer client
// library works against older daemons such as Debian's docker.io.
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// ErrNotFound is matched (errors.Is) by errors about containers that do not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict says a name Docker has already (a network's, say).
var ErrConflict = errors.New("already exists")

// cleanupTimeout bounds rollback calls, which run even when the caller's context is done.
const cleanupTimeout = 30 * time.Second

// Client talks to one Docker daemon.
type Client struct {
	api *client.Client
	// lockDir holds the lock files that serialise pause image imports between
	// processes; empty disables the lock.
	lockDir string
	// eventsSince, set by tests only, has Events replay the daemon's events from then on:
	// the stream is set up in the background, after Events returns.
	eventsSince time.Time
}

// Info is the part of a container's state ovn-docker cares about.
type Info struct {
	ID    string
	Name  string // without the leading "/"
	Image string // as given at creation
	// Pid is the container's init process on the host, 0 when not running.
	Pid         int
	Running     bool
	Labels      map[string]string
	NetworkMode string
	ExitCode    int
	// RestartPolicy is its restart policy's name ("no", "always", "unless-stopped",
	// "on-failure"); "" when none was set.
	RestartPolicy string
	// Networks are the IDs of the networks it is connected to.
	Networks []string
}

// Event is a container lifecycle event.
type Event struct {
	Action string // "start", "die" or "destroy"
	ID     string
	Name   string
	Image  string
	// Labels are the container's labels as the daemon reports them with the event.
	Labels map[string]string
	// ExitCode is set for "die" events.
	ExitCode int
	Time     time.Time
}

// New connects to the daemon at host (for example "unix:///run/docker.sock"); an empty
// host means DOCKER_HOST or the platform default. It negotiates the API version and
// fails when the daemon does not answer.
func New(ctx context.Context, host string) (*Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client for %q: %w", host, err)
	}
	ping, err := api.Ping(ctx)
	if err != nil {
		daemon := api.DaemonHost()
		_ = api.Close()
		return nil, fmt.Errorf("docker is not reachable at %s: %w", daemon, err)
	}
	api.NegotiateAPIVersionPing(ping)
	return &Client{api: api, lockDir: defaultLockDir()}, nil
}

// defaultLockDir prefers the root-owned lock directory so that lock files vanish on
// reboot; any writable directory works since the locks only avoid duplicate imports.
func defaultLockDir() string {
	if st, err := os.Stat("/run/lock"); err == nil && st.IsDir() {
		return "/run/lock"
	}
	return os.TempDir()
}

// Close releases the client's connections.
func (c *Client) Close() error {
	if err := c.api.Close(); err != nil {
		return fmt.Errorf("close docker client: %w", err)
	}
	return nil
}

// NetNSPath is the network namespace of the process pid as seen from the host.
func NetNSPath(pid int) string {
	return fmt.Sprintf("/proc/%d/ns/net", pid)
}

// Inspect returns a container by id or name; the error matches ErrNotFound when there
// is no such container.
func (c *Client) Inspect(ctx context.Context, ref string) (Info, error) {
	resp, err := c.api.ContainerInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Info{}, fmt.Errorf("inspect container %s: %w", ref, ErrNotFound)
		}
		return Info{}, fmt.Errorf("inspect container %s: %w", ref, err)
	}
	return infoFromInspect(resp), nil
}

func infoFromInspect(r container.InspectResponse) Info {
	info := Info{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/")}
	if r.Config != nil {
		info.Image = r.Config.Image
		info.Labels = r.Config.Labels
	}
	if r.State != nil {
		info.Pid = r.State.Pid
		info.Running = r.State.Running
		info.ExitCode = r.State.ExitCode
	}
	if r.HostConfig != nil {
		info.NetworkMode = string(r.HostConfig.NetworkMode)
		info.RestartPolicy = string(r.HostConfig.RestartPolicy.Name)
	}
	if r.NetworkSettings != nil {
		for _, n := range r.NetworkSettings.Networks {
			if n != nil && n.NetworkID != "" {
				info.Networks = append(info.Networks, n.NetworkID)
			}
		}
		sort.Strings(info.Networks)
	}
	return info
}

// Create creates a container without starting it. Nothing is left behind on error.
func (c *Client) Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig) (string, []string, error) {
	return c.CreateOn(ctx, name, cfg, hc, nil)
}

// CreateOn is Create with the endpoint settings of the container's network (its
// HostConfig.NetworkMode): a fixed address, say.
func (c *Client) CreateOn(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, endpoints map[string]*network.EndpointSettings) (string, []string, error) {
	resp, err := c.api.ContainerCreate(ctx, cfg, hc, &network.NetworkingConfig{EndpointsConfig: endpoints}, nil, name)
	if err != nil {
		return "", nil, fmt.Errorf("create container %s: %w", name, err)
	}
	return resp.ID, resp.Warnings, nil
}

// Start starts a created container.
func (c *Client) Start(ctx context.Context, id string) error {
	if err := c.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	return nil
}

// Remove removes a container and its anonymous volumes; force also kills it when
// running. A container that does not exist is not an error.
func (c *Client) Remove(ctx context.Context, id string, force bool) error {
	err := c.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: force, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}

// List returns every container, running or not, that carries the label, given as
// "key" or "key=value"; an empty label lists all containers. Containers removed while
// listing are skipped.
func (c *Client) List(ctx context.Context, label string) ([]Info, error) {
	args := filters.NewArgs()
	if label != "" {
		args.Add("label", label)
	}
	summaries, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, fmt.Errorf("list containers with label %q: %w", label, err)
	}
	// The list lacks pids and exit codes, which reconciliation needs.
	infos := make([]Info, 0, len(summaries))
	for _, s := range summaries {
		info, err := c.Inspect(ctx, s.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list containers with label %q: %w", label, err)
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// Wait blocks until the container is not running and returns its exit code. Call it
// after Start: a container that was created but never started counts as not running.
func (c *Client) Wait(ctx context.Context, id string) (int, error) {
	resC, errC := c.api.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case res := <-resC:
		if res.Error != nil && res.Error.Message != "" {
			return int(res.StatusCode), fmt.Errorf("wait for container %s: %s", id, res.Error.Message)
		}
		return int(res.StatusCode), nil
	case err := <-errC:
		return 0, fmt.Errorf("wait for container %s: %w", id, err)
	}
}

// Stream copies the container's output to stdout and stderr until the container stops.
// Call it after Start. It follows the container's log, so output written before the
// call is not lost, whatever the timing; the log driver must support reading (every
// driver but "none" does, through the daemon's local cache).
func (c *Client) Stream(ctx context.Context, id string, stdout, stderr io.Writer) error {
	resp, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		return fmt.Errorf("stream container %s: %w", id, err)
	}
	rc, err := c.api.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return fmt.Errorf("stream container %s: %w", id, err)
	}
	defer rc.Close()
	// A TTY has one raw stream; otherwise stdout and stderr are multiplexed.
	if resp.Config != nil && resp.Config.Tty {
		_, err = io.Copy(stdout, rc)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, rc)
	}
	if err != nil {
		return fmt.Errorf("stream container %s: %w", id, err)
	}
	return nil
}

// Events streams the start, die and destroy events of containers carrying all of the
// labels ("key" or "key=value"). Both channels are closed when the stream ends; the
// error channel then yields why (ctx.Err() after cancellation). Events that happened
// before the call are not replayed: list first, then reconcile with events.
func (c *Client) Events(ctx context.Context, labels ...string) (<-chan Event, <-chan error) {
	args := filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("event", string(events.ActionStart)),
		filters.Arg("event", string(events.ActionDie)),
		filters.Arg("event", string(events.ActionDestroy)),
	)
	for _, l := range labels {
		args.Add("label", l)
	}
	// From the moment of the call: the stream itself is set up in the background, and
	// an event of the moments in between would be lost without Since.
	since := time.Now()
	if !c.eventsSince.IsZero() {
		since = c.eventsSince
	}
	opts := events.ListOptions{Filters: args, Since: fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())}
	msgs, errs := c.api.Events(ctx, opts)

	out := make(chan Event)
	errOut := make(chan error, 1)
	go func() {
		defer close(errOut)
		defer close(out)
		for {
			select {
			case m := <-msgs:
				select {
				case out <- eventFromMessage(m):
				case <-ctx.Done():
					errOut <- ctx.Err()
					return
				}
			case err := <-errs:
				if ctx.Err() != nil {
					errOut <- ctx.Err()
				} else {
					errOut <- fmt.Errorf("docker events: %w", err)
				}
				return
			case <-ctx.Done():
				errOut <- ctx.Err()
				return
			}
		}
	}()
	return out, errOut
}

func eventFromMessage(m events.Message) Event {
	e := Event{Action: string(m.Action), ID: m.Actor.ID, Labels: map[string]string{}}
	for k, v := range m.Actor.Attributes {
		switch k {
		case "name":
			e.Name = v
		case "image":
			e.Image = v
		case "exitCode":
			e.ExitCode, _ = strconv.Atoi(v)
		default:
			e.Labels[k] = v
		}
	}
	if m.TimeNano != 0 {
		e.Time = time.Unix(0, m.TimeNano)
	} else {
		e.Time = time.Unix(m.Time, 0)
	}
	return e
}
