package netdev

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is struct ethtool_value from <linux/ethtool.h>.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with ifr_data set. The pointer stays a real
// pointer (not bytes) so the garbage collector keeps the target alive.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	// Pads to at least sizeof(struct ifreq): the kernel copies all of it.
	_ [24 - unsafe.Sizeof(uintptr(0))]byte
}

// ethtool runs one ETHTOOL_* value command on the named link in the calling
// thread's netns and returns the value the kernel wrote back.
func ethtool(name string, cmd, data uint32) (uint32, error) {
	if len(name) > maxNameLen {
		return 0, fmt.Errorf("interface name %q too long: %w", name, unix.EINVAL)
	}
	// The socket's netns decides where the kernel looks the name up, so it
	// is opened here, on the caller's (possibly namespace-locked) thread.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open ioctl socket: %w", err)
	}
	defer unix.Close(fd)

	v := ethtoolValue{cmd: cmd, data: data}
	var ifr ifreqData
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(&v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&ifr)
	if errno != 0 {
		return 0, errno
	}
	return v.data, nil
}

// TXChecksum reports whether TX checksum offload is enabled on the named
// link in the caller's netns (ETHTOOL_GTXCSUM).
func TXChecksum(ctx context.Context, name string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	on, err := ethtool(name, unix.ETHTOOL_GTXCSUM, 0)
	if err != nil {
		return false, fmt.Errorf("read tx checksum of %s: %w", name, err)
	}
	return on != 0, nil
}

// disableTXChecksum turns TX checksum offload off (ETHTOOL_STXCSUM) and
// reads it back: a driver may keep a feature on without failing the call.
// Callers add the step and link to the error.
func disableTXChecksum(name string) error {
	if _, err := ethtool(name, unix.ETHTOOL_STXCSUM, 0); err != nil {
		return err
	}
	on, err := ethtool(name, unix.ETHTOOL_GTXCSUM, 0)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if on != 0 {
		return errors.New("still enabled after disabling")
	}
	return nil
}
