// Command gendoc writes what the packages install beside the binary: a man page per
// command (cobra/doc through go-md2man, so that the pages say what --help says) and the
// shell completions. It is a build tool: nothing of it is linked into ovn-docker.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/ovn-docker/ovn-docker/internal/cli"
)

func main() {
	out := flag.String("out", "dist/doc", "folder for man/ and completions/")
	version := flag.String("version", "dev", "the version the pages name")
	flag.Parse()
	if err := run(*out, *version); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}

func run(out, version string) error {
	root := cli.DocCommand()
	root.DisableAutoGenTag = true // pages that do not change with the day they were built
	man := filepath.Join(out, "man")
	comp := filepath.Join(out, "completions")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	markdownSafe(root)
	date := sourceDate()
	hdr := &doc.GenManHeader{Title: "OVN-DOCKER", Section: "1", Source: "ovn-docker " + version, Manual: "ovn-docker manual", Date: &date}
	if err := doc.GenManTree(root, hdr, man); err != nil {
		return err
	}
	for name, gen := range map[string]func(*cobra.Command, string) error{
		"ovn-docker.bash": func(c *cobra.Command, p string) error { return c.GenBashCompletionFileV2(p, true) },
		"_ovn-docker":     func(c *cobra.Command, p string) error { return c.GenZshCompletionFile(p) },
		"ovn-docker.fish": func(c *cobra.Command, p string) error { return c.GenFishCompletionFile(p, true) },
	} {
		if err := gen(root, filepath.Join(comp, name)); err != nil {
			return err
		}
	}
	return nil
}

// markdownSafe rewrites each command's long help so that go-md2man keeps it as
// --help shows it: indented lines (flag tables, command examples) become literal
// blocks, and elsewhere the characters markdown would take as emphasis are escaped
// (OS_PROJECT_NAME must not lose its underscores).
func markdownSafe(c *cobra.Command) {
	var b strings.Builder
	inBlock := false
	for _, line := range strings.Split(c.Long, "\n") {
		indented := strings.HasPrefix(line, " ")
		switch {
		case indented && !inBlock:
			b.WriteString("\n")
		case !indented && inBlock && line != "":
			b.WriteString("\n")
		}
		inBlock = indented || (inBlock && line == "")
		if indented {
			b.WriteString("    " + line + "\n")
			continue
		}
		b.WriteString(mdEscape.Replace(line) + "\n")
	}
	c.Long = strings.TrimRight(b.String(), "\n")
	for _, sub := range c.Commands() {
		markdownSafe(sub)
	}
}

var mdEscape = strings.NewReplacer("_", `\_`, "*", `\*`, "`", "\\`", "<", `\<`, "[", `\[`)

// sourceDate is SOURCE_DATE_EPOCH when set (reproducible builds), else today.
func sourceDate() time.Time {
	var sec int64
	if _, err := fmt.Sscan(os.Getenv("SOURCE_DATE_EPOCH"), &sec); err == nil {
		return time.Unix(sec, 0).UTC()
	}
	return time.Now().UTC()
}
