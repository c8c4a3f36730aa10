package state

import (
	"encoding/json"
	"testing"
)

// FuzzDecode: whatever a state file holds (torn by a disk, edited by hand), decode
// answers with a state or an error, never a panic, and a state it accepts is sound.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":1,"attachments":{"a":{"id":"a","vlan":7,"phase":"attached"}}}`))
	f.Add([]byte(`{"version":1,"attachments":{"a":null}}`))
	f.Add([]byte(`{"version":99}`))
	f.Add([]byte(`{`))
	f.Add([]byte(`{"attachments":{"x":{"id":"y"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decode(b, "fuzz")
		if err != nil {
			return
		}
		for id, a := range st.Attachments {
			if a == nil || a.ID != id || a.VLAN < 0 || a.VLAN > 4094 {
				t.Fatalf("accepted a broken attachment %q: %+v", id, a)
			}
		}
		if _, err := json.Marshal(st); err != nil {
			t.Fatalf("an accepted state does not encode: %v", err)
		}
		_ = st.UsedVLANs()
		_ = st.Sorted()
	})
}
