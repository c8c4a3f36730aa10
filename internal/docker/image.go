package docker

import (
	"context"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
)

// Pull policies for EnsureImage.
const (
	PullMissing = "missing" // pull only when the image is not present (the default)
	PullAlways  = "always"  // always pull; fail when the pull fails
	PullNever   = "never"   // never pull; fail when the image is not present
)

const (
	// PauseRepo is the repository of the locally built pause images.
	PauseRepo = "ovn-docker-pause"
	// PauseLabel is set on pause images to the full sha256 of their executable.
	PauseLabel = "ovn-docker.pause"
	// pauseExe is where the executable lives inside the pause image.
	pauseExe = "/ovn-docker"
)

// EnsureImage makes sure the image ref is present according to the pull policy
// (PullMissing, PullAlways or PullNever; "" means PullMissing).
func (c *Client) EnsureImage(ctx context.Context, ref, pull string) error {
	switch pull {
	case "", PullMissing, PullAlways, PullNever:
	default:
		return fmt.Errorf("ensure image %q: unknown pull policy %q (want %s, %s or %s)", ref, pull, PullMissing, PullAlways, PullNever)
	}
	present, err := c.imageExists(ctx, ref)
	if err != nil {
		return err
	}
	switch {
	case pull == PullNever && !present:
		return fmt.Errorf("image %q not found locally and could not be pulled: pull policy is %q", ref, PullNever)
	case pull != PullAlways && present:
		return nil
	}
	if err := c.pull(ctx, ref); err != nil {
		if present {
			return fmt.Errorf("pull image %q (policy %q): %w", ref, pull, err)
		}
		return fmt.Errorf("image %q not found locally and could not be pulled: %w", ref, err)
	}
	return nil
}

func (c *Client) imageExists(ctx context.Context, ref string) (bool, error) {
	_, err := c.api.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("inspect image %q: %w", ref, err)
	}
}

func (c *Client) pull(ctx context.Context, ref string) error {
	_, err := c.Pull(ctx, ref, "", nil)
	return err
}

// progressMessage is one line of the JSON progress stream that pulls and imports
// answer with; failures arrive in-band, after a 200 status.
type progressMessage struct {
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readProgress drains a progress stream (a pull's, an image load's) and returns its
// last status, or the first error the daemon reported in it.
func readProgress(r io.Reader) (string, error) { return followPull(r, nil) }
