package server_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank"
)

// fillAll sets every field of the struct v points to a value of its own,
// different from every other field's and from the zero value; n numbers
// them. A field of a kind it does not know fails the test, so that a new
// field cannot slip by unfilled.
func fillAll(t *testing.T, v reflect.Value, n *int) {
	t.Helper()
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Uint64, reflect.Uint32, reflect.Uint, reflect.Uint16, reflect.Uint8:
		v.SetUint(uint64(*n))
	case reflect.Int64, reflect.Int32, reflect.Int, reflect.Int16, reflect.Int8:
		v.SetInt(int64(*n) * 100)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillAll(t, s.Index(i), n)
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, *n, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fillAll(t, v.Field(i), n)
		}
	default:
		t.Fatalf("fillAll: a field of kind %s (%s): teach fillAll to fill it", v.Kind(), v.Type())
	}
	if v.IsZero() {
		t.Fatalf("fillAll: %s left zero", v.Type())
	}
}

// sameFields checks that two struct types have the same fields, by name,
// in the same order.
func sameFields(t *testing.T, a, b reflect.Type) {
	t.Helper()
	if a.NumField() != b.NumField() {
		t.Errorf("%s has %d fields, %s %d: a field added to one must be added to the other and to EntryOf and EventOf",
			a, a.NumField(), b, b.NumField())
	}
	for i := range min(a.NumField(), b.NumField()) {
		if a.Field(i).Name != b.Field(i).Name {
			t.Errorf("field %d: %s.%s but %s.%s", i, a, a.Field(i).Name, b, b.Field(i).Name)
		}
	}
}

// TestEntryConversionCarriesEveryField: every field of a bank.Event, each
// set to a value of its own, reaches the wire.Entry under the same name
// and comes back unchanged, and the same from a wire.Entry; the two types
// (and their receive reports) have the same fields.
func TestEntryConversionCarriesEveryField(t *testing.T) {
	t.Parallel()
	sameFields(t, reflect.TypeFor[bank.Event](), reflect.TypeFor[wire.Entry]())
	sameFields(t, reflect.TypeFor[bank.Seen](), reflect.TypeFor[wire.Seen]())

	var ev bank.Event
	n := 0
	fillAll(t, reflect.ValueOf(&ev).Elem(), &n)
	en := server.EntryOf(ev)
	sameValues(t, reflect.ValueOf(ev), reflect.ValueOf(en))
	if back := server.EventOf(en); !reflect.DeepEqual(back, ev) {
		t.Errorf("EventOf(EntryOf(e)) differs from e:\n got %+v\nwant %+v", back, ev)
	}

	var en2 wire.Entry
	n = 0
	fillAll(t, reflect.ValueOf(&en2).Elem(), &n)
	ev2 := server.EventOf(en2)
	sameValues(t, reflect.ValueOf(en2), reflect.ValueOf(ev2))
	if back := server.EntryOf(ev2); !reflect.DeepEqual(back, en2) {
		t.Errorf("EntryOf(EventOf(e)) differs from e:\n got %+v\nwant %+v", back, en2)
	}

	// Nothing reported stays nothing, not an empty list.
	if got := server.EntryOf(bank.Event{}); got.Seen != nil {
		t.Errorf("EntryOf of an event without receive reports: Seen = %#v, want nil", got.Seen)
	}
	if got := server.EventOf(wire.Entry{}); got.Seen != nil {
		t.Errorf("EventOf of an entry without receive reports: Seen = %#v, want nil", got.Seen)
	}
}

// sameValues checks that every field of struct from has the same value, as
// JSON, in the field of to with its name.
func sameValues(t *testing.T, from, to reflect.Value) {
	t.Helper()
	for i := range from.NumField() {
		name := from.Type().Field(i).Name
		f := to.FieldByName(name)
		if !f.IsValid() {
			t.Errorf("%s.%s has no field of that name in %s", from.Type(), name, to.Type())
			continue
		}
		want, _ := json.Marshal(from.Field(i).Interface())
		got, _ := json.Marshal(f.Interface())
		if string(got) != string(want) {
			t.Errorf("%s: %s.%s = %s, but %s.%s = %s", name, from.Type(), name, want, to.Type(), name, got)
		}
	}
}
