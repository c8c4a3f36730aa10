package state

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fill sets every field reachable from v to a non-zero value: a field added later is
// covered by TestCloneSharesNothing without editing it.
func fill(t *testing.T, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), path)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(1700000000, 0).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, k, path+"[key]")
		fill(t, e, path+"[]")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(t, s.Index(0), path+"[0]")
		v.Set(s)
	case reflect.String:
		v.SetString("x")
	case reflect.Int:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	default:
		t.Fatalf("%s: fill a %s", path, v.Kind())
	}
}

// shared reports the first pointer, map or slice that a and b have in common.
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		return shared(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
					return p
				}
			}
		}
	case reflect.Map:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		for _, k := range a.MapKeys() {
			if p := shared(a.MapIndex(k), b.MapIndex(k), path+"["+fmt.Sprint(k)+"]"); p != "" {
				return p
			}
		}
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	}
	return ""
}

// The cache hands out copies: a caller that changes what it got must not change what
// the next caller gets, whatever fields State grows.
func TestCloneSharesNothing(t *testing.T) {
	var st State
	fill(t, reflect.ValueOf(&st).Elem(), "State")
	c := st.clone()
	if !reflect.DeepEqual(&st, c) {
		t.Fatalf("clone differs:\n%+v\n%+v", st, *c)
	}
	if p := shared(reflect.ValueOf(&st).Elem(), reflect.ValueOf(c).Elem(), "State"); p != "" {
		t.Fatalf("clone shares %s with the original", p)
	}
}

func TestViewChangesStayWithTheCaller(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "st"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Update(ctx, func(st *State) error {
		st.Attachments["a1"] = &Attachment{ID: "a1", VLAN: 7, IPs: []string{"10.0.0.5/24"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.View(ctx, func(st *State) error {
			a := st.Attachments["a1"]
			if a.VLAN != 7 || a.IPs[0] != "10.0.0.5/24" || len(st.Attachments) != 1 {
				return fmt.Errorf("saw %+v", a)
			}
			a.VLAN, a.IPs[0] = 9, "changed"
			st.Attachments["a2"] = &Attachment{ID: "a2"}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// A failed update's changes are not kept either.
	_ = s.Update(ctx, func(st *State) error {
		st.Attachments["a1"].VLAN = 11
		return fmt.Errorf("no")
	})
	if err := s.View(ctx, func(st *State) error {
		if a := st.Attachments["a1"]; a.VLAN != 7 {
			return fmt.Errorf("vlan %d after a failed update", a.VLAN)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Two Stores of one directory are two processes: each sees the other's writes, and a
// file an older ovn-docker wrote (no serial) is read afresh every time.
func TestCacheSeesOtherWriters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "st")
	a, _ := Open(dir)
	b, _ := Open(dir)
	ctx := context.Background()
	vlanIn := func(s *Store) int {
		var v int
		if err := s.View(ctx, func(st *State) error {
			if x := st.Attachments["x"]; x != nil {
				v = x.VLAN
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	set := func(s *Store, vlan int) {
		if err := s.Update(ctx, func(st *State) error {
			st.Attachments["x"] = &Attachment{ID: "x", VLAN: vlan}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	set(a, 1)
	if v := vlanIn(a); v != 1 {
		t.Fatalf("a reads %d after its own write of 1", v)
	}
	set(b, 2)
	if v := vlanIn(a); v != 2 {
		t.Fatalf("a reads %d after b wrote 2", v)
	}
	set(a, 3)
	if v := vlanIn(b); v != 3 {
		t.Fatalf("b reads %d after a wrote 3", v)
	}
	// An older ovn-docker's write: the same bytes without the serial.
	path := filepath.Join(dir, fileName)
	for _, vlan := range []int{4, 5} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		old := strings.Replace(string(raw), `"serial": "`+serialOf(raw)+`",`, "", 1)
		old = strings.Replace(old, fmt.Sprintf(`"vlan": %d`, vlanIn(a)), fmt.Sprintf(`"vlan": %d`, vlan), 1)
		if serialOf([]byte(old)) != "" {
			t.Fatalf("serial left in %s", old)
		}
		if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
			t.Fatal(err)
		}
		if v := vlanIn(a); v != vlan {
			t.Fatalf("a reads %d from a file without serial that says %d", v, vlan)
		}
	}
}

func TestSerialOf(t *testing.T) {
	for in, want := range map[string]string{
		"{\n \"version\": 1,\n \"serial\": \"ab12\",\n \"last_vlan\": 3}": "ab12",
		`{"version":1,"serial":"x"}`:                                      "x",
		`{"version":1,"last_vlan":3,"serial":"x"}`:                        "",
		`{"serial":"x","version":1}`:                                      "",
		`{"version":1,"serial":7}`:                                        "",
		`[1]`:                                                             "",
		``:                                                                "",
		`{"version":"1","serial":"x"}`:                                    "",
	} {
		if got := serialOf([]byte(in)); got != want {
			t.Errorf("serialOf(%s) = %q, want %q", in, got, want)
		}
	}
}
