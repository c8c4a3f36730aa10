package service

import (
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
)

func TestCheckProjects(t *testing.T) {
	vm := &neutron.Port{ID: "vm-port", ProjectID: "proj-a"}
	own := &neutron.Network{Name: "own", ProjectID: "proj-a"}
	shared := &neutron.Network{Name: "public", ProjectID: "proj-ops", Shared: true}
	other := &neutron.Network{Name: "theirs", ProjectID: "proj-b"}
	for _, tc := range []struct {
		name string
		vm   *neutron.Port
		nets []*neutron.Network
		want string // "" accepts
	}{
		{"own networks", vm, []*neutron.Network{own, own}, ""},
		{"a shared network of another project", vm, []*neutron.Network{own, shared}, ""},
		{"another project's network", vm, []*neutron.Network{own, other}, "network theirs belongs to project proj-b, the VM's port vm-port to project proj-a"},
		{"another project's network first", vm, []*neutron.Network{other}, "proj-b"},
		{"the VM's project unknown", &neutron.Port{ID: "vm-port"}, []*neutron.Network{other}, ""},
		{"no VM port", nil, []*neutron.Network{other}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkProjects(tc.vm, tc.nets)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
