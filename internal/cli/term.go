package cli

import (
	"errors"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/ovn-docker/ovn-docker/internal/docker"
	"github.com/ovn-docker/ovn-docker/internal/runargs"
)

// errNotATTY is docker run -it's own word for a stdin that is no terminal.
var errNotATTY = errors.New("the input device is not a TTY")

// terminalOf is stdin's terminal, when it is one.
func terminalOf(stdin any) (int, bool) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// checkTTY refuses -it on a stdin that is not a terminal before anything is made, as
// docker run does.
func (a *app) checkTTY(opts *runargs.Options) error {
	if opts.Interactive && opts.TTY {
		if _, ok := terminalOf(a.stdin); !ok {
			return errNotATTY
		}
	}
	return nil
}

// consoleSize gives a -t container the terminal's size when it is created, as docker
// run does: its first command must not see a 0x0 terminal before the first resize.
func (a *app) consoleSize(opts *runargs.Options) {
	if !opts.TTY || opts.HostConfig == nil {
		return
	}
	if fd, ok := terminalOf(a.stdin); ok {
		if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 {
			opts.HostConfig.ConsoleSize = [2]uint{uint(h), uint(w)}
		}
	}
}

// streams are the foreground container's: stdin with -i; with -t on a terminal, the
// terminal in raw mode (restored by the returned func) and its sizes, now and on
// SIGWINCH.
func (a *app) streams(opts *runargs.Options) (docker.Streams, func(), error) {
	st := docker.Streams{Out: a.stdout, Err: a.stderr}
	if opts.Interactive {
		st.In = a.stdin
	}
	fd, isTerm := terminalOf(a.stdin)
	if !opts.TTY || !isTerm {
		return st, func() {}, nil
	}
	var restore func()
	if opts.Interactive {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return st, nil, err
		}
		restore = func() { _ = term.Restore(fd, old) }
	}
	sizes := make(chan docker.TermSize, 1)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	stop := make(chan struct{})
	go func() {
		defer close(sizes)
		for {
			if w, h, err := term.GetSize(fd); err == nil {
				select {
				case sizes <- docker.TermSize{Height: uint(h), Width: uint(w)}:
				case <-stop:
					return
				}
			}
			select {
			case <-winch:
			case <-stop:
				return
			}
		}
	}()
	st.Sizes = sizes
	return st, func() {
		signal.Stop(winch)
		close(stop)
		if restore != nil {
			restore()
		}
	}, nil
}
