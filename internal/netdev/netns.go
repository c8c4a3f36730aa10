package netdev

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NewNamedNS makes a network namespace bound at /run/netns/NAME, as `ip netns add` does,
// without entering it, and returns its path.
func NewNamedNS(name string) (string, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return "", fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	created, err := netns.NewNamed(name)
	if err != nil {
		_ = netns.Set(orig)
		return "", fmt.Errorf("new netns %s: %w", name, err)
	}
	created.Close()
	if err := netns.Set(orig); err != nil {
		// This thread is in the wrong namespace: never hand it back to Go.
		runtime.LockOSThread()
		return "", fmt.Errorf("back to the original netns: %w", err)
	}
	return filepath.Join("/run/netns", name), nil
}

// DeleteNamedNS removes a namespace made by NewNamedNS; its links die with it. A missing
// one is not an error.
func DeleteNamedNS(name string) error {
	path := filepath.Join("/run/netns", name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !os.IsNotExist(err) && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
