package netdev

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"
)

func TestHostAndPeerName(t *testing.T) {
	const port = "3F1C2A4E-9b7d-4c21-8e0f-123456789abc"
	if got, want := HostName(port), "odv3f1c2a4e9b7"; got != want {
		t.Errorf("HostName(%q) = %q, want %q", port, got, want)
	}
	if got, want := PeerName(port), "odc3f1c2a4e9b7"; got != want {
		t.Errorf("PeerName(%q) = %q, want %q", port, got, want)
	}
	for _, id := range []string{port, "ffffffff-ffff-ffff-ffff-ffffffffffff", "abc", ""} {
		for _, n := range []string{HostName(id), PeerName(id)} {
			if len(n) > maxNameLen {
				t.Errorf("name %q for %q is longer than %d", n, id, maxNameLen)
			}
		}
	}
	if got, want := HostName("ab-c"), "odvabc"; got != want {
		t.Errorf("HostName of a short id = %q, want %q", got, want)
	}
	// Ports that differ only after the 11th hex digit share a name; ports
	// that differ within it must not.
	if HostName("00000000-0010-0000-0000-000000000000") == HostName("00000000-0020-0000-0000-000000000000") {
		t.Error("ports differing in the 10th digit got the same host name")
	}
}

func TestDerivePeerName(t *testing.T) {
	if got, want := derivePeerName("odv3f1c2a4e9b7"), "odc3f1c2a4e9b7"; got != want {
		t.Errorf("derivePeerName of a HostName = %q, want %q", got, want)
	}
	if got, want := derivePeerName(HostName("3f1c2a4e-9b7d")), PeerName("3f1c2a4e-9b7d"); got != want {
		t.Errorf("derivePeerName(HostName(id)) = %q, want PeerName(id) %q", got, want)
	}
	seen := map[string]string{}
	for _, host := range []string{"veth0", "veth1", "tap-a", "odv", "x"} {
		p := derivePeerName(host)
		if !strings.HasPrefix(p, PeerPrefix) || len(p) > maxNameLen || p == host {
			t.Errorf("derivePeerName(%q) = %q: want %s prefix, <= %d bytes, not the host name", host, p, PeerPrefix, maxNameLen)
		}
		if p != derivePeerName(host) {
			t.Errorf("derivePeerName(%q) is not deterministic", host)
		}
		if other, dup := seen[p]; dup {
			t.Errorf("derivePeerName(%q) = derivePeerName(%q) = %q", host, other, p)
		}
		seen[p] = host
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"eth0", "odv3f1c2a4e9b7", "a", "123456789012345", "x-y_z.w"} {
		if err := validName(ok); err != nil {
			t.Errorf("validName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "1234567890123456", "a/b", "a:b", "a b", "a\tb", "a\x00b"} {
		if err := validName(bad); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("validName(%q) = %v, want ErrInvalidSpec", bad, err)
		}
	}
}

func mustCIDR(t *testing.T, s string) net.IPNet {
	t.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return *n
}

func TestSpecValidate(t *testing.T) {
	good := func() Spec {
		return Spec{
			HostName: "odv123",
			NetNS:    "/proc/1/ns/net",
			IfName:   "eth0",
			MAC:      net.HardwareAddr{0xfa, 0x16, 0x3e, 0, 0, 1},
			Addrs:    []net.IPNet{mustCIDR(t, "10.0.0.2/24"), mustCIDR(t, "2001:db8::2/64")},
			Gateways: []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("2001:db8::1")},
			MTU:      1450,
		}
	}
	if err := good().validate(true); err != nil {
		t.Fatalf("valid spec rejected: %v", err)
	}
	noHost := good()
	noHost.HostName, noHost.PeerName = "", "odc123"
	if err := noHost.validate(false); err != nil {
		t.Errorf("MoveIn spec with only a peer name rejected: %v", err)
	}
	if err := noHost.validate(true); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("Create spec without host name: %v, want ErrInvalidSpec", err)
	}

	cases := map[string]func(*Spec){
		"no names":          func(s *Spec) { s.HostName = "" },
		"long host name":    func(s *Spec) { s.HostName = "odv0123456789abc" },
		"long peer name":    func(s *Spec) { s.PeerName = "odc0123456789abc" },
		"peer equals host":  func(s *Spec) { s.PeerName = s.HostName },
		"no netns":          func(s *Spec) { s.NetNS = "" },
		"no ifname":         func(s *Spec) { s.IfName = "" },
		"bad ifname":        func(s *Spec) { s.IfName = "eth/0" },
		"short mac":         func(s *Spec) { s.MAC = net.HardwareAddr{1, 2, 3} },
		"negative mtu":      func(s *Spec) { s.MTU = -1 },
		"addr without ip":   func(s *Spec) { s.Addrs = []net.IPNet{{Mask: net.CIDRMask(24, 32)}} },
		"addr without mask": func(s *Spec) { s.Addrs = []net.IPNet{{IP: net.ParseIP("10.0.0.2")}} },
		"v4 with v6 mask":   func(s *Spec) { s.Addrs = []net.IPNet{{IP: net.ParseIP("10.0.0.2"), Mask: net.CIDRMask(64, 128)}} },
		"v6 with v4 mask":   func(s *Spec) { s.Addrs = []net.IPNet{{IP: net.ParseIP("2001:db8::2"), Mask: net.CIDRMask(24, 32)}} },
		"non-canonical mask": func(s *Spec) {
			s.Addrs = []net.IPNet{{IP: net.ParseIP("10.0.0.2"), Mask: net.IPv4Mask(255, 0, 255, 0)}}
		},
		"nil gateway":     func(s *Spec) { s.Gateways = []net.IP{nil} },
		"unspecified gw":  func(s *Spec) { s.Gateways = []net.IP{net.IPv4zero} },
		"two v4 gateways": func(s *Spec) { s.Gateways = []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("10.0.0.3")} },
		"two v6 gateways": func(s *Spec) { s.Gateways = []net.IP{net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::3")} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			s := good()
			mutate(&s)
			if err := s.validate(true); !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("validate = %v, want ErrInvalidSpec", err)
			}
		})
	}
}

func TestValidatePair(t *testing.T) {
	if err := validatePair("odv1", "odc1", 1500); err != nil {
		t.Errorf("valid pair rejected: %v", err)
	}
	for _, c := range []struct {
		host, peer string
		mtu        int
	}{{"", "odc1", 0}, {"odv1", "", 0}, {"odv1", "odv1", 0}, {"odv1", "odc1", -5}, {"odv1", "odc0123456789abc", 0}} {
		if err := validatePair(c.host, c.peer, c.mtu); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("validatePair(%q, %q, %d) = %v, want ErrInvalidSpec", c.host, c.peer, c.mtu, err)
		}
	}
}

func TestOnLink(t *testing.T) {
	addrs := []net.IPNet{mustCIDR(t, "10.0.0.2/24"), mustCIDR(t, "2001:db8::2/64")}
	for gw, want := range map[string]bool{
		"10.0.0.1":    true,
		"10.0.1.1":    false,
		"2001:db8::1": true,
		"2001:db9::1": false,
		"fe80::1":     true, // link-local is always on-link
	} {
		if got := onLink(net.ParseIP(gw), addrs); got != want {
			t.Errorf("onLink(%s) = %v, want %v", gw, got, want)
		}
	}
}

func TestIsNSGone(t *testing.T) {
	dir := t.TempDir()
	_, err := ns.GetNS(filepath.Join(dir, "missing"))
	if err == nil || !isNSGone(err) {
		t.Errorf("missing netns path: err %v, isNSGone false", err)
	}
	// An unmounted bind mount is left behind as a plain file.
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ns.GetNS(plain)
	if err == nil || !isNSGone(err) {
		t.Errorf("plain file as netns: err %v, isNSGone false", err)
	}
	if isNSGone(errors.New("permission denied")) || isNSGone(unix.EACCES) {
		t.Error("unrelated errors classified as gone")
	}
}

func TestIfreqLayout(t *testing.T) {
	// The kernel reads a whole struct ifreq and finds ifr_data right after
	// the name; a mismatch would make it read garbage or fault.
	if got, min := unsafe.Sizeof(ifreqData{}), unsafe.Sizeof(unix.Ifreq{}); got < min {
		t.Errorf("sizeof(ifreqData) = %d, want >= sizeof(ifreq) = %d", got, min)
	}
	if got := unsafe.Offsetof(ifreqData{}.data); got != unix.IFNAMSIZ {
		t.Errorf("offset of data = %d, want %d", got, unix.IFNAMSIZ)
	}
	if got := unsafe.Sizeof(ethtoolValue{}); got != 8 {
		t.Errorf("sizeof(ethtoolValue) = %d, want 8", got)
	}
}
