package openflow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// OXM fields of class OFPXMC_OPENFLOW_BASIC used here (OpenFlow 1.3, 7.2.3.7).
const (
	oxmClassBasic = 0x8000

	FieldInPort     uint8 = 0
	FieldEthType    uint8 = 5
	FieldIPProto    uint8 = 10
	FieldUDPSrc     uint8 = 15
	FieldICMPv6Type uint8 = 29
)

// Field is one OXM TLV of the basic class: its field number and value, big-endian.
type Field struct {
	Type  uint8
	Value []byte
	Mask  []byte // nil: exact
}

// Match is an OXM match: its fields, each once, in prerequisite order.
type Match []Field

// InPort matches the ingress port.
func InPort(p uint32) Field {
	return Field{Type: FieldInPort, Value: binary.BigEndian.AppendUint32(nil, p)}
}

// EthType matches the Ethernet type (after VLAN tags).
func EthType(t uint16) Field {
	return Field{Type: FieldEthType, Value: binary.BigEndian.AppendUint16(nil, t)}
}

// IPProto matches the IP protocol (for IPv6, the last next header, after extension headers).
func IPProto(p uint8) Field { return Field{Type: FieldIPProto, Value: []byte{p}} }

// UDPSrc matches the UDP source port.
func UDPSrc(p uint16) Field {
	return Field{Type: FieldUDPSrc, Value: binary.BigEndian.AppendUint16(nil, p)}
}

// ICMPv6Type matches the ICMPv6 type.
func ICMPv6Type(t uint8) Field { return Field{Type: FieldICMPv6Type, Value: []byte{t}} }

// encode writes an ofp_match of type OFPMT_OXM, padded to 8 bytes.
func (m Match) encode() []byte {
	n := 4
	for _, f := range m {
		n += 4 + len(f.Value) + len(f.Mask)
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, (n+7)/8*8), 1) // OFPMT_OXM
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	for _, f := range m {
		hm := f.Type << 1
		if f.Mask != nil {
			hm |= 1
		}
		b = binary.BigEndian.AppendUint16(b, oxmClassBasic)
		b = append(b, hm, byte(len(f.Value)+len(f.Mask)))
		b = append(append(b, f.Value...), f.Mask...)
	}
	return append(b, make([]byte, (n+7)/8*8-n)...)
}

// decodeMatch reads an ofp_match and returns it with the bytes it took, padding included.
func decodeMatch(b []byte) (Match, int, error) {
	if len(b) < 4 {
		return nil, 0, errors.New("short match")
	}
	typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
	padded := (n + 7) / 8 * 8
	if typ != 1 || n < 4 || padded > len(b) {
		return nil, 0, fmt.Errorf("bad match (type %d, length %d)", typ, n)
	}
	var m Match
	for o := b[4:n]; len(o) > 0; {
		if len(o) < 4 {
			return nil, 0, errors.New("short oxm")
		}
		class, hm, l := binary.BigEndian.Uint16(o), o[2], int(o[3])
		if len(o) < 4+l {
			return nil, 0, errors.New("oxm longer than its match")
		}
		if class != oxmClassBasic {
			return nil, 0, fmt.Errorf("oxm class %#x not supported", class)
		}
		f := Field{Type: hm >> 1, Value: slices.Clone(o[4 : 4+l])}
		if hm&1 != 0 {
			f.Value, f.Mask = f.Value[:l/2], f.Value[l/2:]
		}
		m = append(m, f)
		o = o[4+l:]
	}
	return m, padded, nil
}

// Equal compares two matches as sets of fields (a switch may answer in another order).
func (m Match) Equal(o Match) bool {
	if len(m) != len(o) {
		return false
	}
	for _, f := range m {
		if !slices.ContainsFunc(o, func(g Field) bool {
			return f.Type == g.Type && bytes.Equal(f.Value, g.Value) && bytes.Equal(f.Mask, g.Mask)
		}) {
			return false
		}
	}
	return true
}

var fieldNames = map[uint8]string{FieldInPort: "in_port", FieldEthType: "eth_type", FieldIPProto: "ip_proto",
	FieldUDPSrc: "udp_src", FieldICMPv6Type: "icmpv6_type"}

func (m Match) String() string {
	var parts []string
	for _, f := range m {
		name, ok := fieldNames[f.Type]
		if !ok {
			name = fmt.Sprintf("oxm%d", f.Type)
		}
		v := fmt.Sprintf("%#x", f.Value)
		if f.Type == FieldInPort && len(f.Value) == 4 {
			v = portName(binary.BigEndian.Uint32(f.Value))
		} else if len(f.Value) <= 2 && f.Mask == nil {
			var x uint64
			for _, c := range f.Value {
				x = x<<8 | uint64(c)
			}
			v = fmt.Sprint(x)
			if f.Type == FieldEthType {
				v = fmt.Sprintf("%#04x", x)
			}
		}
		if f.Mask != nil {
			v += fmt.Sprintf("/%#x", f.Mask)
		}
		parts = append(parts, name+"="+v)
	}
	return strings.Join(parts, ",")
}
