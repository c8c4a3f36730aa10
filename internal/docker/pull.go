package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
)

// RegistryAuth is the X-Registry-Auth of ref's registry from the user's Docker
// configuration ($DOCKER_CONFIG or ~/.docker/config.json, its credential helpers
// included), as docker pull sends it; "" when it holds none. docker/cli's own config
// package reads it, so that credsStore and credHelpers work as they do for docker.
func RegistryAuth(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	key := reference.Domain(named)
	if key == "docker.io" {
		key = "https://index.docker.io/v1/" // where docker login keeps Docker Hub's
	}
	cf := config.LoadDefaultConfigFile(io.Discard)
	ac, err := cf.GetAuthConfig(key)
	if err != nil {
		return "", fmt.Errorf("credentials for %s from the Docker configuration: %w", key, err)
	}
	if ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
		return "", nil
	}
	return registry.EncodeAuthConfig(registry.AuthConfig{
		Username: ac.Username, Password: ac.Password, Auth: ac.Auth, ServerAddress: ac.ServerAddress,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
	})
}

// PullProgress is how far a pull is: layers done of those seen, bytes downloaded of
// those known.
type PullProgress struct {
	Layers, Done   int
	Current, Total int64
}

// ImagePresent says whether the image is in the daemon.
func (c *Client) ImagePresent(ctx context.Context, ref string) (bool, error) {
	return c.imageExists(ctx, ref)
}

// Pull pulls ref with auth (an X-Registry-Auth, or ""), calling progress (may be nil)
// as layers advance, and returns the daemon's last status ("Status: Downloaded newer
// image for ...").
func (c *Client) Pull(ctx context.Context, ref, auth string, progress func(PullProgress)) (string, error) {
	rc, err := c.api.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	return followPull(rc, progress)
}

// pullMessage is a line of a pull's progress stream.
type pullMessage struct {
	progressMessage
	ID             string `json:"id"`
	ProgressDetail struct {
		Current int64 `json:"current"`
		Total   int64 `json:"total"`
	} `json:"progressDetail"`
}

// followPull reads a pull's progress stream, adding up its layers.
func followPull(r io.Reader, progress func(PullProgress)) (string, error) {
	type layer struct {
		current, total int64
		done           bool
	}
	layers := map[string]*layer{}
	var order []string
	var last string
	dec := json.NewDecoder(r)
	for {
		var m pullMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return last, nil
			}
			return last, fmt.Errorf("read progress: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return last, errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return last, errors.New(m.Error)
		}
		if m.ID == "" || m.Status == "" {
			if m.Status != "" {
				last = m.Status
			}
			continue
		}
		l := layers[m.ID]
		switch m.Status {
		case "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete", "Extracting", "Pull complete", "Already exists":
			if l == nil {
				l = &layer{}
				layers[m.ID] = l
				order = append(order, m.ID)
			}
		default:
			continue // "Pulling from library/busybox" and the like
		}
		if m.Status == "Downloading" {
			l.current, l.total = m.ProgressDetail.Current, max(l.total, m.ProgressDetail.Total)
		}
		if m.Status == "Download complete" || m.Status == "Pull complete" {
			l.current = l.total
		}
		l.done = l.done || m.Status == "Pull complete" || m.Status == "Already exists"
		if progress != nil {
			var p PullProgress
			for _, id := range order {
				p.Layers++
				if layers[id].done {
					p.Done++
				}
				p.Current += layers[id].current
				p.Total += layers[id].total
			}
			progress(p)
		}
	}
}
