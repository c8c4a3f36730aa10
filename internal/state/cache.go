package state

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"sync"
)

// Decoding the whole file on every look cost the agent most of its CPU at a thousand
// interfaces (JSON of about 1 kB an interface, read several times per attach and per
// status call). Each write stamps the file with a random serial, written first; a read
// that finds the serial of the state this process last read or wrote hands out a copy of
// that state instead of decoding the file again. Another process's write has another
// serial, so it is always seen; a file without one (an older ovn-docker wrote it) is
// always decoded.

// cache is the last state this Store read or wrote, by the serial of its file.
type cache struct {
	mu     sync.Mutex
	serial string
	st     *State
}

// get returns a copy of the cached state if it is the one stamped serial.
func (c *cache) get(serial string) *State {
	if serial == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil || c.serial != serial {
		return nil
	}
	return c.st.clone()
}

// put keeps a copy of st, read or written with serial.
func (c *cache) put(serial string, st *State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if serial == "" {
		c.st, c.serial = nil, ""
		return
	}
	c.st, c.serial = st.clone(), serial
}

// newSerial is a fresh random stamp for one write of the file.
func newSerial() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// serialOf reads the serial from the start of a state file: its first two members are
// "version" and "serial" (the order of State's fields). Anything else means none.
func serialOf(b []byte) string {
	d := json.NewDecoder(bytes.NewReader(b))
	want := []func(json.Token) bool{
		func(t json.Token) bool { return t == json.Delim('{') },
		func(t json.Token) bool { return t == "version" },
		func(t json.Token) bool { _, ok := t.(float64); return ok },
		func(t json.Token) bool { return t == "serial" },
	}
	for _, ok := range want {
		t, err := d.Token()
		if err != nil || !ok(t) {
			return ""
		}
	}
	t, err := d.Token()
	if err != nil {
		return ""
	}
	s, _ := t.(string)
	return s
}

// clone is a deep copy: nothing of it is shared with s.
func (s *State) clone() *State {
	c := *s
	c.Attachments = make(map[string]*Attachment, len(s.Attachments))
	for id, a := range s.Attachments {
		c.Attachments[id] = a.clone()
	}
	c.Marks = maps.Clone(s.Marks)
	c.Pools = cloneMap(s.Pools, func(p *PoolPolicy) *PoolPolicy { v := *p; return &v })
	c.DockerPools = cloneMap(s.DockerPools, func(p *DockerPool) *DockerPool { v := *p; return &v })
	c.DockerNetworks = cloneMap(s.DockerNetworks, func(n *DockerNetwork) *DockerNetwork {
		v := *n
		v.SecurityGroups = slices.Clone(n.SecurityGroups)
		v.AllowedAddresses = slices.Clone(n.AllowedAddresses)
		return &v
	})
	return &c
}

func (a *Attachment) clone() *Attachment {
	if a == nil {
		return nil
	}
	v := *a
	v.IPs = slices.Clone(a.IPs)
	v.Gateways = slices.Clone(a.Gateways)
	v.ProbeRouters = slices.Clone(a.ProbeRouters)
	return &v
}

// cloneMap copies m (nil stays nil) with each non-nil value copied by cp.
func cloneMap[V any](m map[string]*V, cp func(*V) *V) map[string]*V {
	if m == nil {
		return nil
	}
	out := make(map[string]*V, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = cp(v)
		} else {
			out[k] = nil
		}
	}
	return out
}
