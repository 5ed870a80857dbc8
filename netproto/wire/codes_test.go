package wire

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"atm/bank/outcome"
)

// TestCodesTableOfProtocolDoc checks the table of error codes in
// PROTOCOL.md §6 against protoCodes, the one place where protocol-level
// codes map to errors: every protocol-level code is in the table, and
// every code in the table is one the client library knows (protocol-level
// or a bank outcome).
func TestCodesTableOfProtocolDoc(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## 6. Errors\n")
	if !ok {
		t.Fatal(`PROTOCOL.md has no "## 6. Errors" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	codeRE := regexp.MustCompile("`([a-z_]+)`")
	inTable := map[string]bool{}
	for line := range strings.SplitSeq(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range codeRE.FindAllStringSubmatch(first, -1) {
			inTable[m[1]] = true
		}
	}
	if len(inTable) < 20 {
		t.Fatalf("read only %d codes in the table of PROTOCOL.md §6: has its shape changed?", len(inTable))
	}
	for _, c := range protoCodes {
		if !inTable[c.code] {
			t.Errorf("protocol code %q (%v) is not in the table of PROTOCOL.md §6", c.code, c.err)
		}
	}
	for code := range inTable {
		err := ErrorForCode(code)
		if err == nil || err != outcome.ErrInternal && errors.Is(err, outcome.ErrInternal) {
			t.Errorf("PROTOCOL.md §6 lists %q, a code the client library does not know", code)
		}
	}
}
