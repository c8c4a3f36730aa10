package ovs

import (
	"maps"
	"strings"
	"testing"
)

func TestAccessPortValidate(t *testing.T) {
	ok := []AccessPort{
		{Bridge: "br-int", Name: "v", Tag: 1},
		{Bridge: "br-int", Name: "vethabcdef01234", Tag: 4094},
		{Bridge: "br-int", Name: "od-1234.5", Tag: 100, ExternalIDs: map[string]string{"ovn-docker-vlan": "100"}},
	}
	for _, p := range ok {
		if err := p.validate(); err != nil {
			t.Errorf("validate(%+v) = %v, want nil", p, err)
		}
	}
	bad := []struct {
		p    AccessPort
		want string
	}{
		{AccessPort{Name: "v", Tag: 1}, "bridge name is empty"},
		{AccessPort{Bridge: "br", Tag: 1}, "port name is empty"},
		{AccessPort{Bridge: "br", Name: "vethabcdef012345", Tag: 1}, "longer than 15"},
		{AccessPort{Bridge: "br", Name: "a/b", Tag: 1}, "invalid port name"},
		{AccessPort{Bridge: "br", Name: "a b", Tag: 1}, "invalid port name"},
		{AccessPort{Bridge: "br", Name: "..", Tag: 1}, "invalid port name"},
		{AccessPort{Bridge: "br", Name: "v", Tag: 0}, "tag 0 out of range"},
		{AccessPort{Bridge: "br", Name: "v", Tag: 4095}, "tag 4095 out of range"},
		{AccessPort{Bridge: "br", Name: "v", Tag: -1}, "out of range"},
	}
	for _, b := range bad {
		err := b.p.validate()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("validate(%+v) = %v, want error containing %q", b.p, err, b.want)
		}
	}
}

func TestUsedTags(t *testing.T) {
	ports := []PortInfo{
		{Name: "br-int"}, // bridge port: no VLAN
		{Name: "uplink", Trunks: []int{100, 200, 0}}, // trunk
		{Name: "c1", Tag: 5},
		{Name: "c2", Tag: 5},
		{Name: "c3", Tag: 4094},
	}
	want := map[int]bool{5: true, 100: true, 200: true, 4094: true}
	if got := usedTags(ports); !maps.Equal(got, want) {
		t.Errorf("usedTags = %v, want %v", got, want)
	}
	if got := usedTags(nil); got == nil || len(got) != 0 {
		t.Errorf("usedTags(nil) = %#v, want an empty map", got)
	}
}
