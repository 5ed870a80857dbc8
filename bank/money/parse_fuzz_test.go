package money

import (
	"errors"
	"strings"
	"testing"
)

var amountErrors = []error{ErrAmountEmpty, ErrAmountChars, ErrAmountNegative, ErrAmountZero,
	ErrAmountDecimals, ErrAmountGrouping, ErrAmountAmbiguous, ErrAmountTooLarge}

// FuzzAmountInput checks the amount parser on arbitrary input: it never
// panics, refuses with one of its documented errors, accepts only positive
// amounts, and reads back its own formatting of what it accepted, with or
// without the "R$" prefix and surrounding spaces.
func FuzzAmountInput(f *testing.F) {
	for _, s := range []string{
		"50", "1.234,56", "1,234.56", "1.234.567", "50,5", ",5", "0,01", "R$ 10",
		"r$1.000,00", "  7  ", "-5", "0", "0,00", "1.2345", "12,345,678.9", "92.233.720.368.547.758,07",
		"92233720368547758,08", "1..2", "1,,2", "01.234", "1.23.456", "R$", "", "١٢٣", "1e3", "+5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			if c != 0 {
				t.Fatalf("Parse(%q) = %d with error %v; want 0", s, c, err)
			}
			known := false
			for _, e := range amountErrors {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("Parse(%q): undocumented error %v", s, err)
			}
			return
		}
		if c <= 0 {
			t.Fatalf("Parse(%q) = %d, not positive", s, c)
		}
		formatted := c.String() // "R$ 1.234,56"
		for _, in := range []string{formatted, strings.TrimPrefix(formatted, "R$ "), " " + formatted + " "} {
			back, err := Parse(in)
			if err != nil || back != c {
				t.Fatalf("Parse(%q) = %d, but its formatting %q reads back as %d (%v)", s, c, in, back, err)
			}
		}
	})
}
