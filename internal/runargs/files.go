package runargs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// readKVFile reads docker's --env-file/--label-file format: one KEY=VALUE
// per line, values taken verbatim; blank lines and lines starting with '#'
// are skipped.
func readKVFile(opt, name string, lookup func(string) (string, bool)) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", opt, err)
	}
	defer f.Close()
	var out []string
	// Scanning line by line bounds what a wrong file (a device, a binary)
	// can make us read: a line longer than the scanner's buffer fails.
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Bytes()
		if !utf8.Valid(raw) {
			return nil, fmt.Errorf("%s %s: line %d is not valid UTF-8", opt, name, n)
		}
		if n == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\uFEFF"))
		}
		line := strings.TrimLeftFunc(string(raw), unicode.IsSpace)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, hasVal := strings.Cut(line, "=")
		if key == "" {
			return nil, fmt.Errorf("%s %s: line %d has no name before '='", opt, name, n)
		}
		if strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("%s %s: line %d: name %q contains whitespace", opt, name, n, key)
		}
		if hasVal {
			out = append(out, key+"="+val)
			continue
		}
		// A bare NAME takes its value from lookup; docker drops it when
		// there is none (always, for label files).
		if lookup != nil {
			if v, ok := lookup(key); ok {
				out = append(out, key+"="+v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s %s: %w", opt, name, err)
	}
	return out, nil
}
