package service

import "testing"

// FuzzParsePrefix: --subnet values never panic the parser.
func FuzzParsePrefix(f *testing.F) {
	f.Add("10.0.0.0/24")
	f.Add("10.0.0.5/24")
	f.Add("fd00::/64")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix("--subnet", s)
		if err == nil && p.Masked() != p {
			t.Fatalf("accepted %q with host bits", s)
		}
	})
}
