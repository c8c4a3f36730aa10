package runargs

import (
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/mount"
)

// listValue collects every occurrence of a repeatable option, in order.
// Unlike pflag's StringSlice it never splits on commas: docker does not
// either (`-e A=1,2` sets A to "1,2").
type listValue struct {
	values   *[]string
	validate func(string) (string, error)
}

func newList(values *[]string, validate func(string) (string, error)) *listValue {
	return &listValue{values: values, validate: validate}
}

func (l *listValue) Set(v string) error {
	if l.validate != nil {
		nv, err := l.validate(v)
		if err != nil {
			return err
		}
		v = nv
	}
	*l.values = append(*l.values, v)
	return nil
}

func (l *listValue) String() string {
	if l.values == nil || len(*l.values) == 0 {
		return ""
	}
	return "[" + strings.Join(*l.values, " ") + "]"
}

func (l *listValue) Type() string { return "list" }

// bytesValue is a size with docker's units ("512m", "1g", "1024").
type bytesValue struct {
	n *int64
	// minusOne accepts "-1" (unlimited), as --memory-swap does.
	minusOne bool
}

func (b *bytesValue) Set(v string) error {
	if b.minusOne && v == "-1" {
		*b.n = -1
		return nil
	}
	n, err := parseBytes(v)
	if err != nil {
		return err
	}
	*b.n = n
	return nil
}

func (b *bytesValue) String() string {
	if b.n == nil || *b.n == 0 {
		return ""
	}
	return fmt.Sprint(*b.n)
}

func (b *bytesValue) Type() string { return "bytes" }

// cpusValue is a decimal number of CPUs stored as nano-CPUs.
type cpusValue struct{ n *int64 }

func (c *cpusValue) Set(v string) error {
	n, err := parseCPUs(v)
	if err != nil {
		return err
	}
	*c.n = n
	return nil
}

func (c *cpusValue) String() string {
	if c.n == nil || *c.n == 0 {
		return ""
	}
	return fmt.Sprint(*c.n)
}

func (c *cpusValue) Type() string { return "decimal" }

// mountValue collects --mount specs, parsed as they are given so that an
// error points at the offending occurrence.
type mountValue struct {
	mounts *[]mount.Mount
	abs    func(string) (string, error)
}

func (m *mountValue) Set(v string) error {
	mnt, err := parseMount(v, m.abs)
	if err != nil {
		return err
	}
	*m.mounts = append(*m.mounts, mnt)
	return nil
}

func (m *mountValue) String() string { return "" }

func (m *mountValue) Type() string { return "mount" }

// refusedError is returned as is, without the "invalid value" wrapping, so
// that the user reads why the option is refused.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

// refusedValue backs a docker option that ovn-docker recognises but must
// refuse: naming it precisely beats reporting it as unknown.
type refusedValue struct{ msg string }

func (r *refusedValue) Set(string) error { return &refusedError{msg: r.msg} }

func (r *refusedValue) String() string { return "" }

func (r *refusedValue) Type() string { return "string" }

func isRefused(err error) bool {
	var r *refusedError
	return errors.As(err, &r)
}
