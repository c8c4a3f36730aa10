package dockerplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/unixsock"
)

// Listener is the plugin's unix socket, <dir>/<name>.sock: Docker finds plugins by their
// sockets in its plugin folder (/run/docker/plugins).
type Listener = unixsock.Listener

// Listen makes the plugin's socket, readable and writable by root only (see package
// unixsock).
func Listen(dir, name string) (*Listener, error) {
	if name == "" || filepath.Base(name) != name || name[0] == '.' {
		return nil, fmt.Errorf("plugin name %q: not a plain file name", name)
	}
	return unixsock.Listen(filepath.Join(dir, name+".sock"))
}

// Serve answers Docker on l until ctx ends, then drains (see unixsock.Serve).
func Serve(ctx context.Context, l *Listener, h http.Handler, drain time.Duration, log *slog.Logger) error {
	log.Info("serving Docker", "socket", l.Path())
	return unixsock.Serve(ctx, l, h, drain, log)
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
