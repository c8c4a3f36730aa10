package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/docker/go-units"
	"golang.org/x/term"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/runargs"
)

// pullFirst pulls run's image here, in the user's process, as docker run does: with
// the user's registry credentials from the Docker configuration (they never travel to
// the agent) and a progress line on stderr. Then the run, wherever it is made, finds the
// image present.
func (a *app) pullFirst(ctx context.Context, opts *runargs.Options) error {
	ref := opts.Config.Image
	if opts.Pull == docker.PullNever {
		return nil
	}
	dc, err := docker.New(ctx, "")
	if err != nil {
		return err
	}
	defer dc.Close()
	present, err := dc.ImagePresent(ctx, ref)
	if err != nil {
		return err
	}
	if present && opts.Pull != docker.PullAlways {
		return nil
	}
	auth, err := docker.RegistryAuth(ref)
	if err != nil {
		return err
	}
	onTerm := false
	if f, ok := a.stderr.(*os.File); ok {
		onTerm = term.IsTerminal(int(f.Fd()))
	}
	if !present && onTerm {
		// For the person waiting; a script gets one line, the error or the result.
		fmt.Fprintf(a.stderr, "Unable to find image '%s' locally\n", ref)
	}
	progress := func(p docker.PullProgress) {
		if onTerm {
			fmt.Fprintf(a.stderr, "\r\x1b[Kpulling %s: %d of %d layers, %s of %s", ref, p.Done, p.Layers,
				units.HumanSize(float64(p.Current)), units.HumanSize(float64(p.Total)))
		}
	}
	last, err := dc.Pull(ctx, ref, auth, progress)
	if onTerm {
		fmt.Fprint(a.stderr, "\r\x1b[K")
	}
	if err != nil && !present {
		return fmt.Errorf("image %q not found locally and could not be pulled: %w", ref, err)
	}
	if err != nil {
		return err
	}
	if last != "" {
		fmt.Fprintln(a.stderr, last)
	}
	// Pulled once, here: the run must not pull again (without the credentials).
	opts.Pull = docker.PullMissing
	return nil
}
