package openflow

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The expected bytes below are written from the OpenFlow 1.3.5 specification's
// structures (ofp_header, ofp_hello_elem_versionbitmap, ofp_flow_mod, ofp_match with
// OXM TLVs, ofp_instruction_actions, ofp_action_output, ofp_multipart_request,
// ofp_flow_stats_request, ofp_flow_stats), field by field.

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func same(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %x\nwant %x", what, got, want)
	}
}

var raDrop = Flow{Priority: 100, Cookie: 0x0102030405060708,
	Match: Match{EthType(0x86dd), IPProto(58), ICMPv6Type(134)}}

func TestHello(t *testing.T) {
	same(t, "hello", hello(1), unhex(t, `04 00 0010 00000001  0001 0008 00000010`))
}

func TestCheckHello(t *testing.T) {
	for _, tc := range []struct {
		name string
		ver  uint8
		body string
		ok   bool
	}{
		{"bitmap 1.0 to 1.4", 5, "0001 0008 0000001e", true},
		{"bitmap 1.0 only", 4, "0001 0008 00000002", false},
		{"no bitmap, 1.4", 5, "", true},
		{"no bitmap, 1.0", 1, "", false},
		{"unknown element then bitmap", 6, "0002 0005 aa000000 0001 0008 00000010", true},
	} {
		err := checkHello(tc.ver, unhex(t, tc.body))
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrNoVersion) {
			t.Errorf("%s: err %v, want ErrNoVersion", tc.name, err)
		}
	}
}

func TestFlowModAdd(t *testing.T) {
	f := raDrop
	f.Output = []uint32{PortNormal}
	want := unhex(t, `
		04 0e 0060 00000007
		0102030405060708 0000000000000000
		00 00 0000 0000 0064 ffffffff ffffffff ffffffff 0000 0000
		0001 0014 8000 0a02 86dd 8000 1401 3a 8000 3a01 86 00000000
		0004 0018 00000000 0000 0010 fffffffa ffff 000000000000`)
	same(t, "add output NORMAL", Add(f).encode(7), want)
}

func TestFlowModDrop(t *testing.T) {
	f := raDrop
	f.Match = Match{InPort(3), EthType(0x0800), IPProto(17), UDPSrc(67)}
	want := unhex(t, `
		04 0e 0050 00000002
		0102030405060708 0000000000000000
		00 00 0000 0000 0064 ffffffff ffffffff ffffffff 0000 0000
		0001 001d 8000 0004 00000003 8000 0a02 0800 8000 1401 11 8000 1e02 0043 000000`)
	same(t, "add drop (no instruction)", Add(f).encode(2), want)
}

func TestFlowModDeletes(t *testing.T) {
	same(t, "delete by cookie", DeleteCookie(0xabc).encode(9), unhex(t, `
		04 0e 0038 00000009
		0000000000000abc ffffffffffffffff
		ff 03 0000 0000 0000 ffffffff ffffffff ffffffff 0000 0000
		0001 0004 00000000`))
	f := raDrop
	f.Output = []uint32{PortNormal} // a strict delete carries no instruction
	same(t, "delete strict", DeleteStrict(f).encode(3), unhex(t, `
		04 0e 0048 00000003
		0102030405060708 ffffffffffffffff
		00 04 0000 0000 0064 ffffffff ffffffff ffffffff 0000 0000
		0001 0014 8000 0a02 86dd 8000 1401 3a 8000 3a01 86 00000000`))
}

func TestFlowStatsRequest(t *testing.T) {
	same(t, "flow stats request", flowStatsRequest(4, 0xabc, ^uint64(0)), unhex(t, `
		04 12 0038 00000004
		0001 0000 00000000
		ff 000000 ffffffff ffffffff 00000000
		0000000000000abc ffffffffffffffff
		0001 0004 00000000`))
}

// statsEntry is one ofp_flow_stats with the given match and instructions (hex).
func statsEntry(t *testing.T, prio uint16, cookie uint64, match, inst string) []byte {
	m, i := unhex(t, match), unhex(t, inst)
	b := binary.BigEndian.AppendUint16(nil, uint16(48+len(m)+len(i)))
	b = append(b, 0, 0)       // table 0, pad
	b = append(b, 0, 0, 0, 9) // duration_sec
	b = append(b, 0, 0, 0, 0) // duration_nsec
	b = binary.BigEndian.AppendUint16(b, prio)
	b = append(b, 0, 0, 0, 0, 0, 0) // idle, hard timeouts, flags
	b = append(b, 0, 0, 0, 0)       // pad
	b = binary.BigEndian.AppendUint64(b, cookie)
	b = append(b, make([]byte, 16)...) // packet and byte counts
	return append(append(b, m...), i...)
}

func TestParseFlowStats(t *testing.T) {
	// The switch lists the fields in another order than we sent them.
	drop := statsEntry(t, 100, 0xabc, `0001 0014 8000 3a01 86 8000 0a02 86dd 8000 1401 3a 00000000`, ``)
	normal := statsEntry(t, 101, 0xabc, `0001 001c 8000 0a02 86dd 8000 0004 fffffffe 8000 1401 3a 8000 3a01 86 00000000`,
		`0004 0018 00000000 0000 0010 fffffffa ffff 000000000000`)
	other := statsEntry(t, 5, 0xabc, `0001 0004 00000000`, `0001 0008 01 000000`) // goto_table 1
	body := append(unhex(t, `0001 0001 00000000`), drop...)
	body = append(append(body, normal...), other...)
	flows, more, err := parseFlowStats(body)
	if err != nil {
		t.Fatal(err)
	}
	if !more || len(flows) != 3 {
		t.Fatalf("got %d flows, more %v; want 3, true", len(flows), more)
	}
	wantDrop := Flow{Priority: 100, Cookie: 0xabc, Match: Match{EthType(0x86dd), IPProto(58), ICMPv6Type(134)}}
	if !flows[0].Equal(wantDrop) {
		t.Errorf("flow 0 = %v, want %v", flows[0], wantDrop)
	}
	wantNormal := Flow{Priority: 101, Cookie: 0xabc, Match: Match{InPort(PortLocal), EthType(0x86dd), IPProto(58), ICMPv6Type(134)},
		Output: []uint32{PortNormal}}
	if !flows[1].Equal(wantNormal) {
		t.Errorf("flow 1 = %v, want %v", flows[1], wantNormal)
	}
	if flows[1].Equal(wantDrop) || wantDrop.Equal(flows[1]) {
		t.Errorf("a NORMAL flow equals a drop")
	}
	if !flows[2].Other || flows[2].Equal(Flow{Priority: 5, Cookie: 0xabc}) {
		t.Errorf("flow 2 = %v: goto_table must be other, never equal", flows[2])
	}
	if got := flows[1].String(); got != "table=0,priority=101,cookie=0xabc,eth_type=0x86dd,in_port=LOCAL,ip_proto=58,icmpv6_type=134 actions=output:NORMAL" {
		t.Errorf("String() = %q", got)
	}
	for _, bad := range [][]byte{body[:7], body[:20], append(unhex(t, `0001 0000 00000000`), drop[:60]...)} {
		if _, _, err := parseFlowStats(bad); err == nil {
			t.Errorf("%x: no error", bad)
		}
	}
}

func TestDecodeMatchMasked(t *testing.T) {
	m, n, err := decodeMatch(unhex(t, `0001 000c 8000 0b04 0800 ffff`)[:8+4])
	_ = m
	if err == nil || n != 0 {
		// 12 bytes pad to 16: the buffer is too short.
		t.Fatalf("short padded match: n %d err %v", n, err)
	}
	m, n, err = decodeMatch(unhex(t, `0001 000c 8000 0b04 0800 ffff 00000000`))
	if err != nil || n != 16 || len(m) != 1 || m[0].Type != FieldEthType || !bytes.Equal(m[0].Mask, []byte{0xff, 0xff}) {
		t.Fatalf("masked eth_type: %v %d %v", m, n, err)
	}
}

// fakeSwitch answers on the other end of a pipe, as serve says, and records what the
// client sent.
func fakeSwitch(t *testing.T, serve func(c net.Conn, typ uint8, xid uint32, body []byte) bool) *Conn {
	t.Helper()
	a, b := pair(t)
	go func() {
		// The switch's hello: OpenFlow 1.0 to 1.4.
		if _, err := b.Write(unhex(t, `05 00 0010 00000063 0001 0008 0000001e`)); err != nil {
			return
		}
		for {
			var h [8]byte
			if _, err := io.ReadFull(b, h[:]); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint16(h[2:])-8)
			if _, err := io.ReadFull(b, body); err != nil {
				return
			}
			if !serve(b, h[1], binary.BigEndian.Uint32(h[4:]), body) {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	c, err := Handshake(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pair is a connected pair of unix stream sockets: buffered, as the switch's socket is.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	return cs[0], cs[1]
}

func msg(typ uint8, xid uint32, body []byte) []byte {
	return append(header(typ, 8+len(body), xid), body...)
}

func TestApplyReportsErrorAfterBarrier(t *testing.T) {
	var mods int
	c := fakeSwitch(t, func(s net.Conn, typ uint8, xid uint32, body []byte) bool {
		switch typ {
		case typeHello:
		case typeFlowMod:
			mods++
			if mods == 2 { // the second flow mod is refused: bad match, bad prerequisite (7)
				_, _ = s.Write(msg(typeError, xid, unhex(t, `0004 0007 0102`)))
			}
		case typeBarrierRequest:
			// An echo request comes first: the client answers it and keeps waiting.
			_, _ = s.Write(msg(typeEchoRequest, 77, []byte("hi")))
			_, _ = s.Write(msg(typeBarrierReply, xid, nil))
		case typeEchoReply:
			if xid != 77 || string(body) != "hi" {
				t.Errorf("echo reply xid %d body %q", xid, body)
			}
		}
		return true
	})
	err := c.Apply(context.Background(), Add(raDrop), Add(Flow{Priority: 1, Match: Match{ICMPv6Type(134)}}), DeleteCookie(1))
	var oe *Error
	if !errors.As(err, &oe) || oe.Type != 4 || oe.Code != 7 {
		t.Fatalf("err %v, want bad match code 7", err)
	}
	if !strings.Contains(err.Error(), "icmpv6_type=134") || !strings.Contains(err.Error(), "bad match, code 7") {
		t.Errorf("err %q does not name the flow and the error", err)
	}
	if mods != 3 {
		t.Errorf("switch got %d flow mods, want 3", mods)
	}
	if err := c.Apply(context.Background(), Add(raDrop)); err != nil {
		t.Errorf("second apply: %v", err)
	}
}

func TestFlowsAcrossReplies(t *testing.T) {
	c := fakeSwitch(t, func(s net.Conn, typ uint8, xid uint32, body []byte) bool {
		if typ != typeMultipartRequest {
			return true
		}
		if !bytes.Equal(body[8+16:8+32], unhex(t, `0000000000000abc ffffffffffffffff`)) {
			t.Errorf("request's cookie and mask: %x", body[8+16:8+32])
		}
		e := statsEntry(t, 100, 0xabc, `0001 0014 8000 0a02 86dd 8000 1401 3a 8000 3a01 86 00000000`, ``)
		_, _ = s.Write(msg(typeMultipartReply, xid, append(unhex(t, `0001 0001 00000000`), e...)))
		_, _ = s.Write(msg(typeMultipartReply, xid+100, unhex(t, `0001 0000 00000000`))) // not ours
		_, _ = s.Write(msg(typeMultipartReply, xid, append(unhex(t, `0001 0000 00000000`), e...)))
		return true
	})
	flows, err := c.Flows(context.Background(), 0xabc, ^uint64(0))
	if err != nil || len(flows) != 2 {
		t.Fatalf("flows %v err %v, want 2", flows, err)
	}
}

func TestRefusedVersion(t *testing.T) {
	a, b := pair(t)
	go func() {
		_, _ = b.Write(unhex(t, `01 00 0008 00000001`)) // OpenFlow 1.0 only
		_, _ = b.Read(make([]byte, 16))
	}()
	if _, err := Handshake(context.Background(), a); !errors.Is(err, ErrNoVersion) {
		t.Fatalf("err %v, want ErrNoVersion", err)
	}
}

func TestContextEndsWait(t *testing.T) {
	c := fakeSwitch(t, func(net.Conn, uint8, uint32, []byte) bool { return true }) // never answers
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Apply(ctx, Add(raDrop)) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestPortMessages(t *testing.T) {
	same(t, "port desc request", portDescRequest(5), unhex(t, `04 12 0010 00000005 000d 0000 00000000`))
	same(t, "set async: port status only", setAsyncPorts(6), unhex(t, `
		04 1c 0020 00000006
		00000000 00000000
		00000007 00000007
		00000000 00000000`))
	port := unhex(t, `00000003 00000000 02aabbccddee 0000
		75706c696e6b00000000000000000000
		00000000 00000004 00000000 00000000 00000000 00000000 00000000 00000000`) // "uplink", live
	p, err := parsePort(port)
	if err != nil || p != (Port{No: 3, Name: "uplink"}) {
		t.Fatalf("port %+v %v", p, err)
	}
	ps, err := parsePortStatus(append(unhex(t, `01 00000000000000`), port...))
	if err != nil || ps.Reason != PortDeleted || ps.Port.Name != "uplink" {
		t.Fatalf("port status %+v %v", ps, err)
	}
	if _, err := parsePortStatus(port[:40]); err == nil {
		t.Error("short port status: no error")
	}
}

// TestPortsAndStatus: Ports reads a multi-part description; a port status that comes
// while another reply is awaited is kept for NextPortStatus.
func TestPortsAndStatus(t *testing.T) {
	port := func(no uint32, name string) []byte {
		b := binary.BigEndian.AppendUint32(nil, no)
		b = append(b, make([]byte, 12)...)
		n := make([]byte, 16)
		copy(n, name)
		return append(append(b, n...), make([]byte, 32)...)
	}
	c := fakeSwitch(t, func(s net.Conn, typ uint8, xid uint32, body []byte) bool {
		if typ == typeMultipartRequest && binary.BigEndian.Uint16(body) == mpPortDesc {
			_, _ = s.Write(msg(typePortStatus, 0, append(make([]byte, 8), port(9, "new0")...)))
			_, _ = s.Write(msg(typeMultipartReply, xid, append(unhex(t, `000d 0001 00000000`), port(1, "eth0")...)))
			_, _ = s.Write(msg(typeMultipartReply, xid, append(append(unhex(t, `000d 0000 00000000`), port(PortLocal, "br0")...), port(2, "c1")...)))
		}
		return true
	})
	ports, err := c.Ports(context.Background())
	if err != nil || len(ports) != 3 || ports[0] != (Port{1, "eth0"}) || ports[1] != (Port{PortLocal, "br0"}) || ports[2] != (Port{2, "c1"}) {
		t.Fatalf("ports %v %v", ports, err)
	}
	ps, err := c.NextPortStatus(context.Background())
	if err != nil || ps.Reason != PortAdded || ps.Port != (Port{9, "new0"}) {
		t.Fatalf("port status %+v %v", ps, err)
	}
}
