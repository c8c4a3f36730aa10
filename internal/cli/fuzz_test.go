package cli

import (
	"strings"
	"testing"
)

// FuzzSplitRun: the split of the command line before and after "run" never panics,
// keeps every word, and hands everything after "run" over untouched.
func FuzzSplitRun(f *testing.F) {
	f.Add("--cred=x --vif-id v --network LS1 run -d --net=none busybox sh -c x")
	f.Add("run --help")
	f.Add("--network run run run")
	f.Add("-- run")
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		out := splitRun(args, map[string]bool{"--cred": true, "--vif-id": true, "--network": true})
		added := len(out) - len(args)
		if added != 0 && added != 1 {
			t.Fatalf("split %q into %q", args, out)
		}
		if added == 1 {
			i := 0
			for out[i] != "--" {
				i++
			}
			if out[i-1] != "run" || strings.Join(out[i+1:], " ") != strings.Join(args[i:], " ") {
				t.Fatalf("the words after run changed: %q -> %q", args, out)
			}
		}
	})
}
