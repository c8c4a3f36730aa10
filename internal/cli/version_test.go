package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	info := func(version string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{Main: debug.Module{Version: version}}
			for i := 0; i+1 < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	for _, tc := range []struct {
		name, set string
		read      func() (*debug.BuildInfo, bool)
		want      string
	}{
		{"linker flag wins", "v1.2.3", info("v9.9.9"), "v1.2.3"},
		{"go install of a version", "dev", info("v0.4.0"), "v0.4.0"},
		{"go build in a checkout", "dev", info("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.modified", "false"), "dev-0123456789ab"},
		{"uncommitted changes", "dev", info("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.modified", "true"), "dev-0123456789ab-dirty"},
		{"nothing recorded", "dev", info("(devel)"), "dev"},
		{"no build info", "dev", none, "dev"},
	} {
		if got := buildVersion(tc.set, tc.read); got != tc.want {
			t.Errorf("%s: buildVersion = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestVersionFlagAndCommand: --version and the version command say the same.
func TestVersionFlagAndCommand(t *testing.T) {
	var outs []string
	for _, args := range [][]string{{"--version"}, {"version"}} {
		var out, errOut bytes.Buffer
		if code := Main(context.Background(), args, nil, &out, &errOut, func(string) string { return "" }); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		outs = append(outs, out.String())
	}
	if outs[0] != outs[1] || !strings.HasPrefix(outs[0], "ovn-docker ") {
		t.Errorf("--version printed %q, version %q; want the same \"ovn-docker VERSION\" line", outs[0], outs[1])
	}
}

// TestHelpNamesEveryVariable: every OVN_DOCKER_* variable the command reads is in
// --help (the test build's fault switch aside).
func TestHelpNamesEveryVariable(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"--help"}, nil, &out, &errOut, func(string) string { return "" }); code != 0 {
		t.Fatalf("--help: exit %d: %s", code, errOut.String())
	}
	re := regexp.MustCompile(`"(OVN_DOCKER_[A-Z_]+)"`)
	files, _ := filepath.Glob("../*/*.go")
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.Contains(f, "testutil") || strings.HasSuffix(f, "fault_on.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			seen++
			if !strings.Contains(out.String(), m[1]) {
				t.Errorf("%s reads %s, which --help does not name", f, m[1])
			}
		}
	}
	if seen == 0 {
		t.Fatal("no OVN_DOCKER_ variable found in the sources: the test sees nothing")
	}
}

// TestCompletion: the shells' completion scripts come from the binary itself, as
// kubectl's and docker's do (the packages install them).
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_ovn-docker", "zsh": "#compdef ovn-docker", "fish": "complete -c ovn-docker"} {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), []string{"completion", shell}, nil, &out, &errb, func(string) string { return "" }); code != 0 || !strings.Contains(out.String(), want) {
			t.Errorf("completion %s: exit %d, %q... %s", shell, code, out.String()[:min(80, out.Len())], errb.String())
		}
	}
}
