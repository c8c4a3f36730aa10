// Package unixsock serves HTTP on unix sockets that only root may use: the Docker
// plugin's socket and the agent's local API. Both carry requests that act with the VM's
// OpenStack credentials, so the socket never exists with looser permissions, not even
// for a moment, and a socket another live process answers on is never taken over.
package unixsock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Listener is a root-only unix socket.
type Listener struct {
	*net.UnixListener
	path string
	ino  uint64
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Listen makes the socket at path, readable and writable by root only, its folder made
// if needed. A socket another process still answers on is refused; a stale one (its
// process died) is replaced; anything else at path is left alone and refused.
func Listen(path string) (*Listener, error) {
	dir, name := filepath.Split(path)
	if name == "" || name[0] == '.' {
		return nil, fmt.Errorf("socket %q: not a plain file name", path)
	}
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("socket folder %s: %w", dir, err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	// Made under a temporary name and renamed into place once only root may use it.
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d", name, os.Getpid()))
	_ = os.Remove(tmp)
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", tmp, err)
	}
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (*Listener, error) {
		ul.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(fmt.Errorf("restrict %s: %w", tmp, err))
	}
	var st unix.Stat_t
	if err := unix.Stat(tmp, &st); err != nil {
		return fail(fmt.Errorf("stat %s: %w", tmp, err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("put the socket in place at %s: %w", path, err))
	}
	return &Listener{UnixListener: ul, path: path, ino: st.Ino}, nil
}

// removeStale removes a socket nobody answers on; it refuses to touch anything else.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket: remove it or choose another name", path)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("another process serves the socket %s: stop it first", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// Remove deletes the socket file if it is still this listener's.
func (l *Listener) Remove() error {
	var st unix.Stat_t
	if err := unix.Stat(l.path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", l.path, err)
	}
	if st.Ino != l.ino {
		return nil // another process's socket now
	}
	if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", l.path, err)
	}
	return nil
}

// Serve answers on l until ctx ends; then it stops accepting, lets calls in flight
// finish (for up to drain, then cuts them off) and removes the socket.
func Serve(ctx context.Context, l *Listener, h http.Handler, drain time.Duration, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	var err error
	select {
	case err = <-done:
		// The listener failed on its own.
	case <-ctx.Done():
		log.Info("shutting down: finishing calls in flight", "socket", l.path, "drain", drain)
		sctx, cancel := context.WithTimeout(context.Background(), drain)
		if serr := srv.Shutdown(sctx); serr != nil {
			log.Warn("calls still in flight were cut off", "socket", l.path, "err", serr)
			_ = srv.Close()
		}
		cancel()
		err = <-done
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if rerr := l.Remove(); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}
