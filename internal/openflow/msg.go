// Package openflow is a small OpenFlow 1.3 client: enough to add and delete flows by
// cookie on an Open vSwitch bridge through its management socket, and to read them
// back. Messages are encoded by hand after the OpenFlow 1.3.5 specification; no Go
// library for it is served by the module proxy this project builds from.
package openflow

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is OpenFlow 1.3's wire version.
const Version = 0x04

// Message types (ofp_type).
const (
	typeHello            = 0
	typeError            = 1
	typeEchoRequest      = 2
	typeEchoReply        = 3
	typeFlowMod          = 14
	typeMultipartRequest = 18
	typeMultipartReply   = 19
	typeBarrierRequest   = 20
	typeBarrierReply     = 21
)

// Reserved ports.
const (
	PortNormal uint32 = 0xfffffffa
	PortLocal  uint32 = 0xfffffffe
	PortAny    uint32 = 0xffffffff
)

const (
	headerLen    = 8
	flowModLen   = 48 // ofp_flow_mod without its match
	flowStatsLen = 48 // ofp_flow_stats without its match
	noBuffer     = 0xffffffff
	groupAny     = 0xffffffff
	tableAll     = 0xff

	cmdAdd          = 0
	cmdDelete       = 3
	cmdDeleteStrict = 4

	mpFlow      = 1 // OFPMP_FLOW
	mpReplyMore = 1 // OFPMPF_REPLY_MORE

	instApplyActions = 4
	actionOutput     = 0
	actionOutputLen  = 16
	hetVersionBitmap = 1 // OFPHET_VERSIONBITMAP
)

// header writes the 8-byte ofp_header of a message of length n.
func header(typ uint8, n int, xid uint32) []byte {
	b := make([]byte, headerLen, n)
	b[0], b[1] = Version, typ
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	binary.BigEndian.PutUint32(b[4:], xid)
	return b
}

// hello offers OpenFlow 1.3 alone, in the version field and in a version bitmap.
func hello(xid uint32) []byte {
	b := header(typeHello, 16, xid)
	b = binary.BigEndian.AppendUint16(b, hetVersionBitmap)
	b = binary.BigEndian.AppendUint16(b, 8)
	return binary.BigEndian.AppendUint32(b, 1<<Version)
}

// checkHello says whether the peer's hello lets both speak OpenFlow 1.3: its bitmap
// has bit 4, or, without a bitmap, its version is at least 1.3.
func checkHello(ver uint8, body []byte) error {
	for len(body) >= 4 {
		typ, n := binary.BigEndian.Uint16(body), int(binary.BigEndian.Uint16(body[2:]))
		if n < 4 || n > len(body) {
			return fmt.Errorf("hello: bad element length %d", n)
		}
		if typ == hetVersionBitmap {
			if n >= 8 && binary.BigEndian.Uint32(body[4:])&(1<<Version) != 0 {
				return nil
			}
			return ErrNoVersion
		}
		// Elements are padded to 8 bytes; the last one's padding may be missing.
		body = body[min((n+7)/8*8, len(body)):]
	}
	if ver >= Version {
		return nil
	}
	return ErrNoVersion
}

// ErrNoVersion: the switch does not speak OpenFlow 1.3 on this socket (for Open vSwitch,
// the bridge's protocols column leaves it out).
var ErrNoVersion = errors.New("the switch does not accept OpenFlow 1.3")

// Flow is one flow entry: what FlowMod adds and what Flows reads back. Output empty
// means drop (no instruction).
type Flow struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Match    Match
	Output   []uint32 // ports of one apply-actions instruction, in order
	// Other is set on a flow read back with instructions or actions this package does
	// not model: it never equals a flow of ours.
	Other bool
}

// Equal compares what makes two flows behave the same (not their counters).
func (f Flow) Equal(g Flow) bool {
	if f.Table != g.Table || f.Priority != g.Priority || f.Cookie != g.Cookie || f.Other || g.Other ||
		len(f.Output) != len(g.Output) || !f.Match.Equal(g.Match) {
		return false
	}
	for i := range f.Output {
		if f.Output[i] != g.Output[i] {
			return false
		}
	}
	return true
}

func (f Flow) String() string {
	act := "drop"
	if f.Other {
		act = "other"
	} else if len(f.Output) > 0 {
		act = "output:"
		for i, p := range f.Output {
			if i > 0 {
				act += ","
			}
			act += portName(p)
		}
	}
	return fmt.Sprintf("table=%d,priority=%d,cookie=%#x,%s actions=%s", f.Table, f.Priority, f.Cookie, f.Match, act)
}

func portName(p uint32) string {
	switch p {
	case PortNormal:
		return "NORMAL"
	case PortLocal:
		return "LOCAL"
	}
	return fmt.Sprint(p)
}

// flowMod encodes an ofp_flow_mod. For an add, f is the flow; for the deletes, f's
// match and priority select, and cookieMask which cookies.
func flowMod(xid uint32, cmd uint8, f Flow, cookieMask uint64) []byte {
	m := f.Match.encode()
	var inst []byte
	if cmd == cmdAdd && len(f.Output) > 0 {
		inst = applyOutput(f.Output)
	}
	n := flowModLen + len(m) + len(inst)
	b := header(typeFlowMod, n, xid)
	b = binary.BigEndian.AppendUint64(b, f.Cookie)
	b = binary.BigEndian.AppendUint64(b, cookieMask)
	table := f.Table
	if cmd == cmdDelete {
		table = tableAll
	}
	b = append(b, table, cmd)
	b = binary.BigEndian.AppendUint16(b, 0) // idle timeout
	b = binary.BigEndian.AppendUint16(b, 0) // hard timeout
	b = binary.BigEndian.AppendUint16(b, f.Priority)
	b = binary.BigEndian.AppendUint32(b, noBuffer)
	b = binary.BigEndian.AppendUint32(b, PortAny)  // out_port: no filter
	b = binary.BigEndian.AppendUint32(b, groupAny) // out_group: no filter
	b = binary.BigEndian.AppendUint16(b, 0)        // flags
	b = append(b, 0, 0)                            // pad
	b = append(b, m...)
	return append(b, inst...)
}

// applyOutput is one OFPIT_APPLY_ACTIONS instruction outputting to each port.
func applyOutput(ports []uint32) []byte {
	n := 8 + actionOutputLen*len(ports)
	b := binary.BigEndian.AppendUint16(nil, instApplyActions)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, 0, 0, 0, 0)
	for _, p := range ports {
		b = binary.BigEndian.AppendUint16(b, actionOutput)
		b = binary.BigEndian.AppendUint16(b, actionOutputLen)
		b = binary.BigEndian.AppendUint32(b, p)
		b = binary.BigEndian.AppendUint16(b, 0xffff) // max_len: OFPCML_NO_BUFFER
		b = append(b, 0, 0, 0, 0, 0, 0)
	}
	return b
}

// flowStatsRequest asks for the flows of every table whose cookie is cookie under mask.
func flowStatsRequest(xid uint32, cookie, mask uint64) []byte {
	m := Match{}.encode()
	n := headerLen + 8 + 32 + len(m)
	b := header(typeMultipartRequest, n, xid)
	b = binary.BigEndian.AppendUint16(b, mpFlow)
	b = append(b, 0, 0, 0, 0, 0, 0) // flags, pad
	b = append(b, tableAll, 0, 0, 0)
	b = binary.BigEndian.AppendUint32(b, PortAny)
	b = binary.BigEndian.AppendUint32(b, groupAny)
	b = append(b, 0, 0, 0, 0)
	b = binary.BigEndian.AppendUint64(b, cookie)
	b = binary.BigEndian.AppendUint64(b, mask)
	return append(b, m...)
}

// parseFlowStats reads a multipart reply's body of ofp_flow_stats; more says another
// reply follows.
func parseFlowStats(body []byte) (flows []Flow, more bool, err error) {
	if len(body) < 8 {
		return nil, false, errors.New("flow stats reply: short")
	}
	if binary.BigEndian.Uint16(body) != mpFlow {
		return nil, false, fmt.Errorf("flow stats reply: multipart type %d", binary.BigEndian.Uint16(body))
	}
	more = binary.BigEndian.Uint16(body[2:])&mpReplyMore != 0
	body = body[8:]
	for len(body) > 0 {
		if len(body) < flowStatsLen+4 {
			return nil, false, errors.New("flow stats: short entry")
		}
		n := int(binary.BigEndian.Uint16(body))
		if n < flowStatsLen+4 || n > len(body) {
			return nil, false, fmt.Errorf("flow stats: bad entry length %d", n)
		}
		e := body[:n]
		f := Flow{Table: e[2], Priority: binary.BigEndian.Uint16(e[12:]), Cookie: binary.BigEndian.Uint64(e[24:])}
		m, mlen, err := decodeMatch(e[flowStatsLen:])
		if err != nil {
			return nil, false, fmt.Errorf("flow stats: %w", err)
		}
		f.Match = m
		f.Output, f.Other, err = parseInstructions(e[flowStatsLen+mlen:])
		if err != nil {
			return nil, false, fmt.Errorf("flow stats: %w", err)
		}
		flows = append(flows, f)
		body = body[n:]
	}
	return flows, more, nil
}

// parseInstructions reads the output ports of apply-actions; anything else is other.
func parseInstructions(b []byte) (out []uint32, other bool, err error) {
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, false, errors.New("short instruction")
		}
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if n < 8 || n > len(b) {
			return nil, false, fmt.Errorf("bad instruction length %d", n)
		}
		if typ != instApplyActions {
			other = true
		} else {
			acts := b[8:n]
			for len(acts) > 0 {
				if len(acts) < 8 {
					return nil, false, errors.New("short action")
				}
				at, an := binary.BigEndian.Uint16(acts), int(binary.BigEndian.Uint16(acts[2:]))
				if an < 8 || an > len(acts) {
					return nil, false, fmt.Errorf("bad action length %d", an)
				}
				if at == actionOutput && an >= actionOutputLen {
					out = append(out, binary.BigEndian.Uint32(acts[4:]))
				} else {
					other = true
				}
				acts = acts[an:]
			}
		}
		b = b[n:]
	}
	return out, other, nil
}
