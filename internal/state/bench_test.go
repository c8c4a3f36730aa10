package state

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkView reads the state of a VM with a thousand interfaces, as the agent does
// several times per attach and per status call.
func BenchmarkView(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "st"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Update(ctx, func(st *State) error {
		for i := range 1000 {
			id := fmt.Sprintf("att%04d", i)
			st.Attachments[id] = &Attachment{ID: id, Owner: "pod" + id, OwnerKind: OwnerCNI, NetworkID: "7e830094-e84b-44f4-a4ef-b3b74cea5a84",
				NetworkName: "net", IfName: "eth0", NetNS: "/var/run/netns/cni-" + id, VLAN: i + 1, Mode: "trunk",
				TrunkID: "0f035616-4b79-451b-9580-393dbf5b08da", PortID: "bea23eeb-504e-4df3-b0b4-39128fea2de1",
				MAC: "fa:16:3e:00:00:01", IPs: []string{"10.78.0.5/21"}, Gateways: []string{"10.78.0.1"}, MTU: 1442,
				ProbeIP: "10.78.0.5", HostIf: "odk" + id, Phase: PhaseAttached, Created: time.Now(), Updated: time.Now()}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.View(ctx, func(st *State) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
