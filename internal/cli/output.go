package cli

// Output as the openstack CLI gives it (cliff's formatters): -f table|json|yaml|value and
// -c COLUMN (repeatable) on every command that prints data, so that scripts written for
// `openstack ... -f value -c id` read ovn-docker the same way. cliff itself is Python;
// its conventions are small enough to keep here: table for people, json and yaml for
// programs (the API's own objects, so that what a script reads is the documented
// schema), value for shell (the cells, space-separated, no header).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/ovn-docker/ovn-docker/internal/api"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

var outputFormats = []string{"table", "json", "yaml", "value"}

// output is what -f and -c asked for.
type output struct {
	format  string
	columns []string
}

// addOutputFlags gives cmd -f and -c.
func addOutputFlags(cmd *cobra.Command, o *output) {
	cmd.Flags().StringVarP(&o.format, "format", "f", "table", "output format: "+strings.Join(outputFormats, ", "))
	cmd.Flags().StringArrayVarP(&o.columns, "column", "c", nil, "show only this column (repeatable; by heading or JSON key, any case)")
}

func (o output) check() error {
	if !slices.Contains(outputFormats, o.format) {
		return fmt.Errorf("-f %q: use %s", o.format, strings.Join(outputFormats, ", "))
	}
	return nil
}

// checkOutput refuses a bad -f or -c before a command asks anyone for anything.
func checkOutput[T any](o output, cols []column[T]) error {
	if err := o.check(); err != nil {
		return err
	}
	_, err := pick(cols, o.columns)
	return err
}

// column is one column of a listing: its table heading, its key in the API's JSON
// object, and its cell as text. extra columns are shown only when -c names them.
type column[T any] struct {
	head  string
	key   string
	cell  func(T) string
	extra bool
}

// pick resolves -c against cols; with no -c, the default columns.
func pick[T any](cols []column[T], names []string) ([]column[T], error) {
	if len(names) == 0 {
		var out []column[T]
		for _, c := range cols {
			if !c.extra {
				out = append(out, c)
			}
		}
		return out, nil
	}
	var out []column[T]
	for _, n := range names {
		for _, part := range strings.Split(n, ",") {
			i := slices.IndexFunc(cols, func(c column[T]) bool {
				return strings.EqualFold(c.head, part) || strings.EqualFold(c.key, part)
			})
			if i < 0 {
				var all []string
				for _, c := range cols {
					all = append(all, strings.ToLower(c.head))
				}
				return nil, fmt.Errorf("-c %q: no such column; use one of %s", part, strings.Join(all, ", "))
			}
			out = append(out, cols[i])
		}
	}
	return out, nil
}

// writeList prints rows as o asks. json and yaml give the API's objects, only the
// -c columns' keys when -c is given.
func writeList[T any](w io.Writer, o output, cols []column[T], rows []T) error {
	sel, err := pick(cols, o.columns)
	if err != nil {
		return err
	}
	switch o.format {
	case "json", "yaml":
		if rows == nil {
			rows = []T{}
		}
		var v any = rows
		if len(o.columns) > 0 {
			if v, err = onlyKeys(rows, sel); err != nil {
				return err
			}
		}
		return writeData(w, o.format, v)
	case "value":
		for _, r := range rows {
			cells := make([]string, len(sel))
			for i, c := range sel {
				cells[i] = c.cell(r)
			}
			if _, err := fmt.Fprintln(w, strings.Join(cells, " ")); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	heads := make([]string, len(sel))
	for i, c := range sel {
		heads[i] = c.head
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t"))
	for _, r := range rows {
		cells := make([]string, len(sel))
		for i, c := range sel {
			cells[i] = dash(c.cell(r))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// writeOne prints one object: table is a Field/Value table, value its values one per
// line, json and yaml the object.
func writeOne[T any](w io.Writer, o output, cols []column[T], row T) error {
	sel, err := pick(cols, o.columns)
	if err != nil {
		return err
	}
	switch o.format {
	case "json", "yaml":
		var v any = row
		if len(o.columns) > 0 {
			objs, err := onlyKeys([]T{row}, sel)
			if err != nil {
				return err
			}
			v = objs[0]
		}
		return writeData(w, o.format, v)
	case "value":
		for _, c := range sel {
			if _, err := fmt.Fprintln(w, c.cell(row)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIELD\tVALUE")
	for _, c := range sel {
		fmt.Fprintf(tw, "%s\t%s\n", c.key, dash(c.cell(row)))
	}
	return tw.Flush()
}

// onlyKeys turns rows into their JSON objects holding only the selected columns' keys.
func onlyKeys[T any](rows []T, sel []column[T]) ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(rows))
	for _, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		var all map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // numbers stay as the API wrote them
		if err := dec.Decode(&all); err != nil {
			return nil, err
		}
		m := make(map[string]any, len(sel))
		for _, c := range sel {
			m[c.key] = all[c.key] // absent (omitempty): null, as cliff shows a missing field
		}
		out = append(out, m)
	}
	return out, nil
}

// writeData writes v as JSON (indented) or YAML. YAML goes through JSON so that it has
// the same keys and values.
func writeData(w io.Writer, format string, v any) error {
	if format == "json" {
		return writeJSON(w, v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic any
	if err := yaml.Unmarshal(b, &generic); err != nil { // JSON is YAML
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return err
	}
	return enc.Close()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// listRunE is the RunE of a command that lists rows fetch reads from the backend (the
// agent, or the standalone one), printed as out asks.
func listRunE[T any](a *app, out *output, cols []column[T], fetch func(api.Backend, context.Context) ([]T, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if err := checkOutput(*out, cols); err != nil {
			return err
		}
		ctx, cancel := a.withTimeout(cmd.Context())
		defer cancel()
		b, err := a.backend(ctx)
		if err != nil {
			return err
		}
		rows, err := fetch(b, ctx)
		if err != nil {
			return err
		}
		return writeList(a.stdout, *out, cols, rows)
	}
}
