//go:build integration

package e2e

import (
	"errors"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/testutil"
)

// tagged is a frame received with the VLAN it came in on: the kernel takes the tag out
// of the frame into the packet's metadata, read here with PACKET_AUXDATA. vlan -1: none.
type tagged struct {
	vlan int
	raw  []byte
}

// vlanCapture records what reaches an interface of a VM's own namespace (its bridge's
// internal port, a trunk of every VLAN on a NORMAL bridge), each frame with its VLAN.
type vlanCapture struct {
	sock   *rawSock
	mu     sync.Mutex
	frames []tagged
	// arrived is closed (and replaced) at each frame: what waitSeen waits on.
	arrived chan struct{}
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func listenVM(t *testing.T, vm *testutil.VM, ifName string) *vlanCapture {
	t.Helper()
	return listenNS(t, "/run/netns/"+vm.Name, ifName)
}

// listenNS records what an interface of a network namespace receives (not what it sends).
func listenNS(t *testing.T, nsPath, ifName string) *vlanCapture {
	t.Helper()
	s := openRaw(t, nsPath, ifName, unix.ETH_P_ALL)
	if err := unix.SetsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		t.Fatal(err)
	}
	// A receive timeout only so that the loop sees quit.
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	c := &vlanCapture{sock: s, arrived: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	t.Cleanup(c.stop)
	return c
}

func (c *vlanCapture) loop() {
	defer close(c.done)
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		select {
		case <-c.quit:
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(c.sock.fd, buf, oob, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		f := tagged{vlan: -1, raw: append([]byte(nil), buf[:n]...)}
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA &&
					len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
					aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
					if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
						f.vlan = int(aux.Vlan_tci & 0x0fff)
					}
				}
			}
		}
		c.mu.Lock()
		c.frames = append(c.frames, f)
		close(c.arrived)
		c.arrived = make(chan struct{})
		c.mu.Unlock()
	}
}

// stop ends the capture at once: a fence that arrived tells what did not.
func (c *vlanCapture) stop() {
	c.once.Do(func() { close(c.quit) })
	<-c.done
}

// waitSeen waits for a matching frame as long as the test may run; false once its time
// is up.
func (c *vlanCapture) waitSeen(t *testing.T, match func(frame) bool) bool {
	t.Helper()
	return waitArrived(t, &c.mu, &c.arrived, func() bool { return len(c.matching(match)) > 0 })
}

// seen returns the frames that match, with their VLANs.
func (c *vlanCapture) seen(match func(frame) bool) []tagged {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.matching(match)
}

func (c *vlanCapture) matching(match func(frame) bool) []tagged {
	var out []tagged
	for _, t := range c.frames {
		if f, ok := parseFrame(t.raw); ok && match(f) {
			out = append(out, t)
		}
	}
	return out
}
