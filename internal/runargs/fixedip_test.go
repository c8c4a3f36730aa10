package runargs

import "testing"

func TestFixedAddresses(t *testing.T) {
	o, err := ParseWithEnv([]string{"--ip", "10.0.0.5", "--ip6=2001:DB8::5", "busybox"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.IPv4Address != "10.0.0.5" || o.IPv6Address != "2001:db8::5" {
		t.Fatalf("--ip %q --ip6 %q", o.IPv4Address, o.IPv6Address)
	}
	o, err = ParseWithEnv([]string{"busybox"}, nil)
	if err != nil || o.IPv4Address != "" || o.IPv6Address != "" {
		t.Fatalf("none given: %q %q %v", o.IPv4Address, o.IPv6Address, err)
	}
}
