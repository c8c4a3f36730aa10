package docker

import (
	"context"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// Streams are a foreground container's: In (nil: none) goes to its stdin when it keeps
// stdin open (-i); Sizes, with a TTY (-t), gives the terminal's size at once and at
// each change.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
	Sizes    <-chan TermSize
}

// TermSize is a terminal's size in characters.
type TermSize struct{ Height, Width uint }

// Foreground starts a created container and runs it as docker run does in the
// foreground: its output (and stdin, with -i) attached before the start, its end asked
// for before the start (a container that ends at once is not missed), its exit code once
// it has ended, or, with removed, once Docker has removed it (auto-remove: docker run
// --rm). Out and Err may be nil (io.Discard).
func (c *Client) Foreground(ctx context.Context, id string, removed bool, st Streams) (int, error) {
	stdout, stderr := st.Out, st.Err
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	info, err := c.api.ContainerInspect(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("container %s: %w", id, err)
	}
	tty := info.Config != nil && info.Config.Tty
	withStdin := st.In != nil && info.Config != nil && info.Config.OpenStdin
	att, err := c.api.ContainerAttach(ctx, id, container.AttachOptions{Stream: true, Stdin: withStdin, Stdout: true, Stderr: true})
	if err != nil {
		return 0, fmt.Errorf("attach to container %s: %w", id, err)
	}
	defer att.Close()
	if withStdin {
		go func() {
			// Its end (EOF) closes the container's stdin, as docker run -i does.
			_, _ = io.Copy(att.Conn, st.In)
			_ = att.CloseWrite()
		}()
	}
	copied := make(chan error, 1)
	go func() {
		var err error
		if tty {
			_, err = io.Copy(stdout, att.Reader)
		} else {
			_, err = stdcopy.StdCopy(stdout, stderr, att.Reader)
		}
		copied <- err
	}()
	cond := container.WaitConditionNextExit
	if removed {
		cond = container.WaitConditionRemoved
	}
	resC, errC := c.api.ContainerWait(ctx, id, cond)
	if err := c.api.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return 0, fmt.Errorf("start container %s: %w", id, err)
	}
	if tty && st.Sizes != nil {
		go func() {
			for sz := range st.Sizes {
				_ = c.api.ContainerResize(ctx, id, container.ResizeOptions{Height: sz.Height, Width: sz.Width})
			}
		}()
	}
	return waitExit(ctx, id, resC, errC, copied)
}
