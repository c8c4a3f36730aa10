package dockerplugin

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

// Listener is the plugin's unix socket, <dir>/<name>.sock: Docker finds plugins by their
// sockets in its plugin folder (/run/docker/plugins).
type Listener struct {
	*net.UnixListener
	path string
	ino  uint64
}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Listen makes the plugin's socket, readable and writable by root only. A socket another
// process still answers on is refused; a stale one (its process died) is replaced.
func Listen(dir, name string) (*Listener, error) {
	if name == "" || filepath.Base(name) != name || name[0] == '.' {
		return nil, fmt.Errorf("plugin name %q: not a plain file name", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plugin folder %s: %w", dir, err)
	}
	path := filepath.Join(dir, name+".sock")
	if err := removeStale(path); err != nil {
		return nil, err
	}
	// The socket is made under a temporary name and renamed into place once only root
	// may use it: Docker never sees it with looser permissions.
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.sock", name, os.Getpid()))
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
		return fmt.Errorf("plugin socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket: remove it or choose another --plugin-name", path)
	}
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("another process serves the plugin socket %s: stop it first", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale plugin socket %s: %w", path, err)
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
	log.Info("serving Docker", "socket", l.path)
	var err error
	select {
	case err = <-done:
		// The listener failed on its own.
	case <-ctx.Done():
		log.Info("shutting down: finishing calls in flight", "drain", drain)
		sctx, cancel := context.WithTimeout(context.Background(), drain)
		if serr := srv.Shutdown(sctx); serr != nil {
			log.Warn("calls still in flight were cut off", "err", serr)
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

// LockDaemon takes the lock that makes a daemon the only one of its state directory:
// two would reconcile against each other. It is released when the process ends.
func LockDaemon(stateDir string) (func(), error) {
	path := filepath.Join(stateDir, "daemon.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another ovn-docker daemon uses the state in %s", stateDir)
		}
		return nil, fmt.Errorf("daemon lock %s: %w", path, err)
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}
