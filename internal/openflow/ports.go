package openflow

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
)

const (
	typePortStatus = 12
	typeSetAsync   = 28
	mpPortDesc     = 13 // OFPMP_PORT_DESC
	portLen        = 64 // ofp_port
)

// Port is a switch port as OpenFlow numbers it.
type Port struct {
	No   uint32
	Name string
}

// Port status reasons (ofp_port_reason).
const (
	PortAdded    = 0
	PortDeleted  = 1
	PortModified = 2
)

// PortStatus is an OFPT_PORT_STATUS: a port was added, deleted or changed.
type PortStatus struct {
	Reason uint8
	Port   Port
}

func parsePort(b []byte) (Port, error) {
	if len(b) < portLen {
		return Port{}, errors.New("short port description")
	}
	name := b[16:32]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return Port{No: binary.BigEndian.Uint32(b), Name: string(name)}, nil
}

func parsePortStatus(body []byte) (PortStatus, error) {
	if len(body) < 8+portLen {
		return PortStatus{}, errors.New("short port status")
	}
	p, err := parsePort(body[8:])
	return PortStatus{Reason: body[0], Port: p}, err
}

// portDescRequest asks for every port's description.
func portDescRequest(xid uint32) []byte {
	b := header(typeMultipartRequest, headerLen+8, xid)
	b = binary.BigEndian.AppendUint16(b, mpPortDesc)
	return append(b, 0, 0, 0, 0, 0, 0)
}

// setAsyncPorts asks for port status messages (all reasons) and nothing else, whatever
// the connection's role: a service connection gets none by default.
func setAsyncPorts(xid uint32) []byte {
	b := header(typeSetAsync, headerLen+24, xid)
	b = append(b, make([]byte, 8)...) // packet-in: none
	b = binary.BigEndian.AppendUint32(b, 1<<PortAdded|1<<PortDeleted|1<<PortModified)
	b = binary.BigEndian.AppendUint32(b, 1<<PortAdded|1<<PortDeleted|1<<PortModified)
	return append(b, make([]byte, 8)...) // flow removed: none
}

// Ports lists the switch's ports.
func (c *Conn) Ports(ctx context.Context) ([]Port, error) {
	var ports []Port
	err := c.multipart(ctx, "port description", portDescRequest, func(body []byte) (bool, error) {
		if len(body) < 8 || binary.BigEndian.Uint16(body) != mpPortDesc {
			return false, errors.New("port description: unexpected reply")
		}
		for b := body[8:]; len(b) > 0; b = b[min(portLen, len(b)):] {
			p, err := parsePort(b)
			if err != nil {
				return false, err
			}
			ports = append(ports, p)
		}
		return binary.BigEndian.Uint16(body[2:])&mpReplyMore != 0, nil
	})
	return ports, err
}

// WatchPorts asks the switch for port status messages; NextPortStatus reads them.
func (c *Conn) WatchPorts(ctx context.Context) error {
	if err := c.with(ctx, func() error {
		_, err := c.c.Write(setAsyncPorts(c.next()))
		return err
	}); err != nil {
		return err
	}
	return c.Apply(ctx) // the barrier: an error about the request comes before it
}

// NextPortStatus waits for a port status message (one that came while another call
// read is returned first), until ctx ends or the connection does.
func (c *Conn) NextPortStatus(ctx context.Context) (PortStatus, error) {
	var ps PortStatus
	err := c.with(ctx, func() error {
		for len(c.pending) == 0 {
			_, typ, _, body, err := c.read()
			if err != nil {
				return err
			}
			if typ == typeError {
				return errorOf(body)
			}
		}
		body := c.pending[0]
		c.pending = c.pending[1:]
		var err error
		ps, err = parsePortStatus(body)
		return err
	})
	return ps, err
}
