package outcome

import (
	"errors"
	"strings"
	"testing"
)

// Every code of the table maps back to its own sentinel, "ok" to nil, and
// any other code to an error matching ErrInternal that names it: a code
// never reads as success unless it is "ok".
func TestFromCodeEveryCode(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range codes {
		if seen[c.code] {
			t.Errorf("code %q is in the table twice", c.code)
		}
		seen[c.code] = true
		if got := FromCode(c.code); got != c.err {
			t.Errorf("FromCode(%q) = %v, want %v", c.code, got, c.err)
		}
		if got := Code(c.err); got != c.code {
			t.Errorf("Code(%v) = %q, want %q", c.err, got, c.code)
		}
	}
	if !seen["internal"] {
		t.Error(`the table has no "internal" code`)
	}
	if err := FromCode(OutcomeOK); err != nil {
		t.Errorf("FromCode(ok) = %v", err)
	}
	for _, code := range []string{"", "no_such_code", "OK", "internal "} {
		err := FromCode(code)
		if err == nil || !errors.Is(err, ErrInternal) {
			t.Errorf("FromCode(%q) = %v, want an error matching ErrInternal", code, err)
			continue
		}
		if !strings.Contains(err.Error(), `"`+code+`"`) {
			t.Errorf("FromCode(%q) = %q does not name the code", code, err)
		}
	}
	if got := Code(errors.New("disk on fire")); got != "internal" {
		t.Errorf("Code of an unknown error = %q", got)
	}
}
