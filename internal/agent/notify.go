package agent

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// notify sends one sd_notify(3) message to systemd's NOTIFY_SOCKET ("" when not run by
// systemd: nothing to tell). Written here rather than taken from go-systemd's daemon
// package: that one reads the process environment itself, and the agent gets
// NOTIFY_SOCKET and WATCHDOG_USEC through its Config, so tests give their own socket.
func notify(socket, msg string, log *slog.Logger) {
	if socket == "" {
		return
	}
	addr := &net.UnixAddr{Name: socket, Net: "unixgram"}
	if socket[0] == '@' {
		addr.Name = "\x00" + socket[1:] // an abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		log.Warn("sd_notify", "socket", socket, "err", err)
		return
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		log.Warn("sd_notify", "socket", socket, "msg", msg, "err", err)
	}
}

// watchdog tells systemd the agent is alive every half of its watchdog interval, as
// long as alive() says so (the agent's own health: a stuck agent is restarted).
func watchdog(ctx context.Context, socket string, interval time.Duration, alive func() error, log *slog.Logger) {
	if socket == "" || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := alive(); err != nil {
			log.Warn("not telling systemd the agent is alive", "err", err)
			continue
		}
		notify(socket, "WATCHDOG=1", log)
	}
}
