package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ovn-docker/ovn-docker/internal/api"
)

var testNets = []api.Network{
	{Name: "LS1", ID: "n-1", CIDRs: []string{"10.0.0.0/24", "fd00::/64"}, MTU: 1442, Containers: 2},
	{Name: "LS2", ID: "n-2", MTU: 1500, Shared: true},
}

func render(t *testing.T, o output) string {
	t.Helper()
	var b bytes.Buffer
	if err := writeList(&b, o, networkColumns, testNets); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestOutputTable(t *testing.T) {
	got := render(t, output{format: "table"})
	want := "NAME  ID   CIDRS                  MTU   CONTAINERS\n" +
		"LS1   n-1  10.0.0.0/24,fd00::/64  1442  2\n" +
		"LS2   n-2  -                      1500  0\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// An extra column shows when asked for, any case, by heading or key; commas work too.
	got = render(t, output{format: "table", columns: []string{"name,Shared"}})
	if got != "NAME  SHARED\nLS1   false\nLS2   true\n" {
		t.Fatalf("-c name,Shared:\n%s", got)
	}
}

func TestOutputValue(t *testing.T) {
	// What `openstack network list -f value -c ID` scripts expect: the cells, no header.
	if got := render(t, output{format: "value", columns: []string{"id"}}); got != "n-1\nn-2\n" {
		t.Fatalf("-f value -c id: %q", got)
	}
	if got := render(t, output{format: "value", columns: []string{"NAME", "mtu"}}); got != "LS1 1442\nLS2 1500\n" {
		t.Fatalf("-f value -c NAME -c mtu: %q", got)
	}
}

func TestOutputJSONKeepsTheAPIObjects(t *testing.T) {
	var all []api.Network
	if err := json.Unmarshal([]byte(render(t, output{format: "json"})), &all); err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].CIDRs[1] != "fd00::/64" || !all[1].Shared || all[0].MTU != 1442 {
		t.Fatalf("json: %+v", all)
	}
	// With -c, only those keys, numbers as numbers.
	var some []map[string]any
	if err := json.Unmarshal([]byte(render(t, output{format: "json", columns: []string{"ID", "mtu"}})), &some); err != nil {
		t.Fatal(err)
	}
	if len(some) != 2 || len(some[0]) != 2 || some[0]["id"] != "n-1" || some[0]["mtu"] != float64(1442) {
		t.Fatalf("json -c ID -c mtu: %v", some)
	}
	// An empty list is [], not null.
	var b bytes.Buffer
	if err := writeList(&b, output{format: "json"}, networkColumns, nil); err != nil || strings.TrimSpace(b.String()) != "[]" {
		t.Fatalf("empty: %q %v", b.String(), err)
	}
}

func TestOutputYAMLSameAsJSON(t *testing.T) {
	var fromYAML []map[string]any
	if err := yaml.Unmarshal([]byte(render(t, output{format: "yaml"})), &fromYAML); err != nil {
		t.Fatal(err)
	}
	if len(fromYAML) != 2 || fromYAML[0]["name"] != "LS1" || fromYAML[0]["mtu"] != 1442 || fromYAML[1]["shared"] != true {
		t.Fatalf("yaml: %v", fromYAML)
	}
}

func TestOutputRefusals(t *testing.T) {
	if err := (output{format: "xml"}).check(); err == nil || !strings.Contains(err.Error(), "table, json, yaml, value") {
		t.Fatalf("-f xml: %v", err)
	}
	_, err := pick(networkColumns, []string{"subnets"})
	if err == nil || !strings.Contains(err.Error(), `-c "subnets": no such column; use one of name, id, cidrs`) {
		t.Fatalf("-c subnets: %v", err)
	}
}

func TestOutputOne(t *testing.T) {
	var b bytes.Buffer
	if err := writeOne(&b, output{format: "table"}, networkColumns, testNets[0]); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "FIELD       VALUE\nname        LS1\nid          n-1\n") {
		t.Fatalf("table:\n%s", b.String())
	}
	b.Reset()
	if err := writeOne(&b, output{format: "value", columns: []string{"id"}}, networkColumns, testNets[0]); err != nil || b.String() != "n-1\n" {
		t.Fatalf("value -c id: %q %v", b.String(), err)
	}
	b.Reset()
	if err := writeOne(&b, output{format: "json", columns: []string{"id"}}, networkColumns, testNets[0]); err != nil || strings.Join(strings.Fields(b.String()), "") != `{"id":"n-1"}` {
		t.Fatalf("json -c id: %q %v", b.String(), err)
	}
}

func TestStatusRows(t *testing.T) {
	st := &api.Status{Checks: []api.Check{{Name: "neutron", OK: true, Detail: "reached"}, {Name: "ovs", Detail: "no\nbridge"}},
		Pools: []api.Pool{{Network: "LS1", Min: 2, Max: 4, Ready: 1, Filling: 1}}, Attachments: 3}
	var b bytes.Buffer
	if err := writeList(&b, output{format: "value"}, statusColumns, statusRows(st)); err != nil {
		t.Fatal(err)
	}
	want := "agent - not running: this command did the checks itself\n" +
		"neutron ok reached\novs FAILED no bridge\npool LS1 - 1 ready of 2-4, 1 being made\ninterfaces - 3\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestVersionAndGCFormats: version and gc print data too, so they take -f and -c.
func TestVersionAndGCFormats(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(t.Context(), []string{"version", "-f", "value", "-c", "platform"}, nil, &out, &errb, func(string) string { return "" }); code != 0 || !strings.Contains(out.String(), "linux/") {
		t.Fatalf("version -f value -c platform: exit %d %q %s", code, out.String(), errb.String())
	}
	var b bytes.Buffer
	if err := writeOne(&b, output{format: "json", columns: []string{"ports"}}, gcColumns, api.GCResult{Ports: 3, Veths: 1}); err != nil ||
		strings.Join(strings.Fields(b.String()), "") != `{"ports":3}` {
		t.Fatalf("gc -f json -c ports: %q %v", b.String(), err)
	}
}
