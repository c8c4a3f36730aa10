package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/flock"
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
	rc, err := c.api.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = readProgress(rc)
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

// readProgress drains a progress stream and returns its last status, or the first
// error the daemon reported in it.
func readProgress(r io.Reader) (string, error) {
	dec := json.NewDecoder(r)
	var last string
	for {
		var m progressMessage
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
		if m.Status != "" {
			last = m.Status
		}
	}
}

// EnsurePauseImage makes sure a pause image holding exe (a statically linked
// ovn-docker) exists and returns its reference, PauseRepo:<first 12 hex digits of the
// executable's sha256>. The image runs "/ovn-docker pause". It is built locally by an
// import, so no registry is needed, and a new binary yields a new image. Concurrent
// callers, in this process or others on the same host, import it once; callers that
// cannot share the lock still succeed, at worst leaving an untagged duplicate.
func (c *Client) EnsurePauseImage(ctx context.Context, exe string) (string, error) {
	f, err := os.Open(exe)
	if err != nil {
		return "", fmt.Errorf("pause image: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("pause image: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("pause image: %s is not a regular file", exe)
	}
	if err := checkStatic(exe, f); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, st.Size())); err != nil {
		return "", fmt.Errorf("pause image: hash %s: %w", exe, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	ref := PauseRepo + ":" + sum[:12]

	if ok, err := c.imageExists(ctx, ref); err != nil {
		return "", fmt.Errorf("pause image: %w", err)
	} else if ok {
		return ref, nil
	}
	unlock, err := c.lockPause(ctx, sum[:12])
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process may have imported it while this one waited for the lock.
	if ok, err := c.imageExists(ctx, ref); err != nil {
		return "", fmt.Errorf("pause image: %w", err)
	} else if ok {
		return ref, nil
	}
	id, err := c.importPause(ctx, ref, sum, f, st.Size())
	if err != nil {
		return "", err
	}
	insp, err := c.api.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("import pause image %s: %w", ref, err)
	}
	if id != "" && insp.ID != id {
		// A caller without the lock tagged its own import after ours; ours is an
		// untagged duplicate now. Best effort: a container using it keeps it.
		_, _ = c.api.ImageRemove(ctx, id, image.RemoveOptions{PruneChildren: true})
	}
	return ref, nil
}

// checkStatic refuses what cannot run in an image that has no libc and no loader.
func checkStatic(path string, r io.ReaderAt) error {
	ef, err := elf.NewFile(r)
	if err != nil {
		return fmt.Errorf("pause image: %s is not an ELF executable: %w", path, err)
	}
	defer ef.Close()
	if ef.Type != elf.ET_EXEC && ef.Type != elf.ET_DYN {
		return fmt.Errorf("pause image: %s is not an executable (ELF type %s)", path, ef.Type)
	}
	for _, p := range ef.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp, _ := io.ReadAll(io.LimitReader(p.Open(), 4096))
		return fmt.Errorf("pause image: %s is dynamically linked (needs the loader %s); build it with CGO_ENABLED=0",
			path, string(bytes.TrimRight(interp, "\x00")))
	}
	return nil
}

// importPause streams a one-file root filesystem holding the executable to the daemon
// and returns the new image's ID. The executable is hashed again while streaming so
// that a binary replaced mid-import cannot end up under the wrong tag.
func (c *Client) importPause(ctx context.Context, ref, sum string, f *os.File, size int64) (string, error) {
	pr, pw := io.Pipe()
	go func() {
		h := sha256.New()
		pw.CloseWithError(writePauseTar(pw, io.TeeReader(io.NewSectionReader(f, 0, size), h), size, h, sum))
	}()
	// Unblocks the writer when the import stops reading early.
	defer pr.Close()

	rc, err := c.api.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, ref, image.ImportOptions{
		Changes: []string{
			fmt.Sprintf(`ENTRYPOINT ["%s"]`, pauseExe),
			`CMD ["pause"]`,
			fmt.Sprintf("LABEL %s=%s", PauseLabel, sum),
		},
	})
	if err != nil {
		return "", fmt.Errorf("import pause image %s: %w", ref, err)
	}
	defer rc.Close()
	// The last status of an import is the image ID.
	last, err := readProgress(rc)
	if err != nil {
		return "", fmt.Errorf("import pause image %s: %w", ref, err)
	}
	if !strings.HasPrefix(last, "sha256:") {
		last = ""
	}
	return last, nil
}

func writePauseTar(w io.Writer, exe io.Reader, size int64, h hash.Hash, sum string) error {
	tw := tar.NewWriter(w)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     pauseExe[1:],
		Mode:     0o755,
		Size:     size,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write pause tar: %w", err)
	}
	if _, err := io.CopyN(tw, exe, size); err != nil {
		return fmt.Errorf("write pause tar: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return errors.New("write pause tar: executable changed during import")
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write pause tar: %w", err)
	}
	return nil
}

// lockPause takes an exclusive lock shared by every process on this host that imports
// the same pause image. The lock is an optimisation (one import instead of several),
// so a lock file that cannot be opened is skipped rather than fatal.
func (c *Client) lockPause(ctx context.Context, tag string) (func(), error) {
	noop := func() {}
	if c.lockDir == "" {
		return noop, nil
	}
	path := filepath.Join(c.lockDir, PauseRepo+"-"+tag+".lock")
	// O_NOFOLLOW: the lock directory may be world-writable.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return noop, nil
	}
	if err := flock.Lock(ctx, f, unix.LOCK_EX); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pause image: wait for lock %s: %w", path, ctx.Err())
		}
		return noop, nil
	}
	return func() { flock.Unlock(f) }, nil
}
