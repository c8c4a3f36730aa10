package docker

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/image"
	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/flock"
)

// EnsurePauseImage makes sure a pause image holding exe (the ovn-docker binary) exists
// and returns its reference, PauseRepo:<12 hex digits>. The image runs
// "/ovn-docker pause". It is built locally by an import, so no registry is needed. A
// statically linked binary is the image's only file and the tag is the start of its
// sha256; a dynamically linked one (plain "go build" where a C compiler exists) brings
// its loader and shared libraries from the host, and the tag covers them too, so a new
// binary or a new libc yields a new image. Concurrent callers, in this process or
// others on the same host, import it once; callers that cannot share the lock still
// succeed, at worst leaving an untagged duplicate.
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
	rt, err := runtimeOf(exe, f)
	if err != nil {
		return "", err
	}
	files := append([]pauseFile{{name: pauseExe[1:], host: exe, mode: 0o755}}, rt.files...)
	for i := range files {
		if err := files[i].hash(); err != nil {
			return "", err
		}
	}
	sum := files[0].sum
	ref := PauseRepo + ":" + pauseTag(files)

	if ok, err := c.imageExists(ctx, ref); err != nil {
		return "", fmt.Errorf("pause image: %w", err)
	} else if ok {
		return ref, nil
	}
	unlock, err := c.lockPause(ctx, ref[len(PauseRepo)+1:])
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
	changes := []string{
		fmt.Sprintf(`ENTRYPOINT ["%s"]`, pauseExe),
		`CMD ["pause"]`,
		fmt.Sprintf("LABEL %s=%s", PauseLabel, sum),
	}
	if rt.libDir != "" {
		changes = append(changes, "ENV LD_LIBRARY_PATH="+rt.libDir)
	}
	id, err := c.importPause(ctx, ref, files, changes)
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

// pauseFile is one file of a pause image: where it goes in the image, where it comes
// from on the host and the sha256 it had when the image's tag was chosen.
type pauseFile struct {
	name string // path in the image, without the leading slash
	host string
	mode int64
	size int64
	sum  string
}

func (p *pauseFile) hash() error {
	f, err := os.Open(p.host)
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("pause image: hash %s: %w", p.host, err)
	}
	p.size, p.sum = n, hex.EncodeToString(h.Sum(nil))
	return nil
}

// pauseTag is the start of the executable's sha256 when it is the only file (so the
// tags of static binaries stay what they always were), else of a hash over every
// file's place and sha256.
func pauseTag(files []pauseFile) string {
	if len(files) == 1 {
		return files[0].sum[:12]
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s %s\n", f.name, f.sum)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// importPause streams the image's root filesystem to the daemon and returns the new
// image's ID.
func (c *Client) importPause(ctx context.Context, ref string, files []pauseFile, changes []string) (string, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writePauseTar(pw, files)) }()
	// Unblocks the writer when the import stops reading early.
	defer pr.Close()

	rc, err := c.api.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, ref, image.ImportOptions{Changes: changes})
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

// writePauseTar writes the files as a tar, each hashed again while it streams so that
// a file replaced since its hash was taken (a new binary, a libc upgrade) cannot end
// up under the wrong tag.
func writePauseTar(w io.Writer, files []pauseFile) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, pf := range files {
		// Parent directories first, as a root filesystem has them.
		var parents []string
		for d := filepath.Dir(pf.name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}); err != nil {
				return fmt.Errorf("write pause tar: %w", err)
			}
		}
		if err := writePauseFile(tw, pf); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write pause tar: %w", err)
	}
	return nil
}

func writePauseFile(tw *tar.Writer, pf pauseFile) error {
	f, err := os.Open(pf.host)
	if err != nil {
		return fmt.Errorf("write pause tar: %w", err)
	}
	defer f.Close()
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     pf.name,
		Mode:     pf.mode,
		Size:     pf.size,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write pause tar: %w", err)
	}
	h := sha256.New()
	if _, err := io.CopyN(tw, io.TeeReader(f, h), pf.size); err != nil {
		return fmt.Errorf("write pause tar: %s: %w", pf.host, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != pf.sum {
		return fmt.Errorf("write pause tar: %s changed during import", pf.host)
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
