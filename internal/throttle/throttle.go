// Package throttle keeps a VM's ovn-docker processes from swamping OpenStack: a limited
// number of slots, shared across processes through file locks, bounds the requests in
// flight at once, so that a hundred simultaneous runs queue in the VM instead of timing
// out in Neutron's queue. neutron.Transport takes a slot for each attempt of a request.
package throttle

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/ovn-docker/ovn-docker/internal/flock"
)

// Slots are n file-locked slots in dir.
type Slots struct {
	dir string
	n   int
}

// NewSlots makes (if needed) the slot files in dir, readable by root only.
func NewSlots(dir string, n int) (*Slots, error) {
	if n < 1 {
		return nil, fmt.Errorf("throttle: %d slots", n)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	return &Slots{dir: dir, n: n}, nil
}

// Acquire takes a free slot, waiting until one frees or ctx ends. The returned func
// gives it back.
func (s *Slots) Acquire(ctx context.Context) (func(), error) {
	first := rand.IntN(s.n) // spread the processes over the slots
	for i := 0; i < s.n; i++ {
		f, err := s.open((first + i) % s.n)
		if err != nil {
			return nil, err
		}
		ok, err := flock.TryLock(f, unix.LOCK_EX)
		if ok {
			return func() { flock.Unlock(f) }, nil
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("throttle: %w", err)
		}
	}
	// Every slot is taken: wait on one.
	f, err := s.open(first)
	if err != nil {
		return nil, err
	}
	if err := flock.Lock(ctx, f, unix.LOCK_EX); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("wait for a free OpenStack request slot: %w", ctx.Err())
		}
		return nil, fmt.Errorf("throttle: %w", err)
	}
	return func() { flock.Unlock(f) }, nil
}

func (s *Slots) open(i int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, fmt.Sprintf("slot-%d", i)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("throttle: %w", err)
	}
	return f, nil
}
