package openflow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Error is an OFPT_ERROR the switch sent about one of our requests.
type Error struct {
	Type, Code uint16
}

// Error types (ofp_error_type) named in messages.
var errorTypes = map[uint16]string{0: "hello failed", 1: "bad request", 2: "bad action", 3: "bad instruction",
	4: "bad match", 5: "flow mod failed", 6: "group mod failed", 7: "port mod failed", 8: "table mod failed",
	9: "queue op failed", 10: "switch config failed", 11: "role request failed", 12: "meter mod failed",
	13: "table features failed", 0xffff: "experimenter"}

func (e *Error) Error() string {
	name, ok := errorTypes[e.Type]
	if !ok {
		name = "type " + fmt.Sprint(e.Type)
	}
	return fmt.Sprintf("openflow error: %s, code %d", name, e.Code)
}

// Conn is one OpenFlow 1.3 connection to a switch. Its methods may be called from
// several goroutines; they are served one at a time.
type Conn struct {
	mu  sync.Mutex
	c   net.Conn
	xid uint32
	// pending are port status messages read while waiting for something else.
	pending [][]byte
}

// Dial connects to the switch at the unix socket path (Open vSwitch's
// <rundir>/<bridge>.mgmt) and agrees on OpenFlow 1.3 within ctx.
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	oc, err := Handshake(ctx, c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return oc, nil
}

// Handshake exchanges hellos on c; it takes c over.
func Handshake(ctx context.Context, c net.Conn) (*Conn, error) {
	oc := &Conn{c: c}
	err := oc.with(ctx, func() error {
		if _, err := c.Write(hello(oc.next())); err != nil {
			return err
		}
		for {
			ver, typ, _, body, err := oc.read()
			if err != nil {
				return fmt.Errorf("hello: %w", err)
			}
			switch typ {
			case typeHello:
				return checkHello(ver, body)
			case typeError:
				return errorOf(body)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return oc, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

func (c *Conn) next() uint32 { c.xid++; return c.xid }

// with runs fn holding the connection, its I/O bounded by ctx.
func (c *Conn) with(ctx context.Context, fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Time{}
	}
	if err := c.c.SetDeadline(dl); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err := fn()
	if ctx.Err() != nil && err != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// read reads one message: its version, type, xid and body (after the header).
func (c *Conn) read() (ver, typ uint8, xid uint32, body []byte, err error) {
	var h [headerLen]byte
	if _, err = io.ReadFull(c.c, h[:]); err != nil {
		return
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	if n < headerLen {
		err = fmt.Errorf("message length %d", n)
		return
	}
	body = make([]byte, n-headerLen)
	if _, err = io.ReadFull(c.c, body); err != nil {
		return
	}
	ver, typ, xid = h[0], h[1], binary.BigEndian.Uint32(h[4:])
	if typ == typePortStatus {
		c.pending = append(c.pending, body)
	}
	if typ == typeEchoRequest {
		// Answered at once: the switch drops a connection that does not.
		rep := header(typeEchoReply, n, xid)
		_, err = c.c.Write(append(rep, body...))
	}
	return
}

func errorOf(body []byte) error {
	if len(body) < 4 {
		return errors.New("openflow error: short message")
	}
	return &Error{Type: binary.BigEndian.Uint16(body), Code: binary.BigEndian.Uint16(body[2:])}
}

// Apply sends the flow mods then a barrier, and returns the first error the switch
// sent about any of them: when it returns nil, the switch has applied them all.
func (c *Conn) Apply(ctx context.Context, mods ...Mod) error {
	return c.with(ctx, func() error {
		var out []byte
		xids := map[uint32]Mod{}
		for _, m := range mods {
			x := c.next()
			xids[x] = m
			out = append(out, m.encode(x)...)
		}
		bx := c.next()
		out = append(out, header(typeBarrierRequest, headerLen, bx)...)
		if _, err := c.c.Write(out); err != nil {
			return err
		}
		var first error
		for {
			_, typ, xid, body, err := c.read()
			if err != nil {
				return err
			}
			switch {
			case typ == typeError && xid == bx:
				return errorOf(body)
			case typ == typeError:
				if m, ok := xids[xid]; ok && first == nil {
					first = fmt.Errorf("%s: %w", m, errorOf(body))
				}
			case typ == typeBarrierReply && xid == bx:
				return first
			}
		}
	})
}

// Flows reads the flows of every table whose cookie is cookie under mask.
func (c *Conn) Flows(ctx context.Context, cookie, mask uint64) ([]Flow, error) {
	var flows []Flow
	err := c.multipart(ctx, "flow stats", func(x uint32) []byte { return flowStatsRequest(x, cookie, mask) },
		func(body []byte) (bool, error) {
			fs, more, err := parseFlowStats(body)
			flows = append(flows, fs...)
			return more, err
		})
	return flows, err
}

// multipart sends the request req makes and hands each part of the switch's reply to
// part, until part says no more follow or fails.
func (c *Conn) multipart(ctx context.Context, what string, req func(xid uint32) []byte, part func(body []byte) (more bool, err error)) error {
	return c.with(ctx, func() error {
		x := c.next()
		if _, err := c.c.Write(req(x)); err != nil {
			return err
		}
		for {
			_, typ, xid, body, err := c.read()
			if err != nil {
				return err
			}
			if xid != x {
				continue
			}
			switch typ {
			case typeError:
				return fmt.Errorf("%s: %w", what, errorOf(body))
			case typeMultipartReply:
				more, err := part(body)
				if err != nil || !more {
					return err
				}
			}
		}
	})
}

// Mod is one flow mod.
type Mod struct {
	cmd        uint8
	flow       Flow
	cookieMask uint64
}

// Add adds f, or replaces the flow of the same table, priority and match.
func Add(f Flow) Mod { return Mod{cmd: cmdAdd, flow: f} }

// DeleteStrict deletes the flow of f's table, priority and match, if its cookie is f's.
func DeleteStrict(f Flow) Mod {
	return Mod{cmd: cmdDeleteStrict, flow: Flow{Table: f.Table, Priority: f.Priority, Match: f.Match, Cookie: f.Cookie}, cookieMask: ^uint64(0)}
}

// DeleteCookie deletes every flow of every table whose cookie is cookie.
func DeleteCookie(cookie uint64) Mod {
	return Mod{cmd: cmdDelete, flow: Flow{Cookie: cookie}, cookieMask: ^uint64(0)}
}

func (m Mod) encode(xid uint32) []byte { return flowMod(xid, m.cmd, m.flow, m.cookieMask) }

func (m Mod) String() string {
	switch m.cmd {
	case cmdAdd:
		return "add " + m.flow.String()
	case cmdDeleteStrict:
		return fmt.Sprintf("delete table=%d,priority=%d,cookie=%#x,%s", m.flow.Table, m.flow.Priority, m.flow.Cookie, m.flow.Match)
	}
	return fmt.Sprintf("delete cookie=%#x", m.flow.Cookie)
}
