package money

import (
	"errors"
	"math"
	"strings"
)

// Errors returned by Parse. The messages are shown under the field as
// the user types.
var (
	ErrAmountEmpty     = errors.New("type an amount, e.g. 50 or 1.234,56")
	ErrAmountChars     = errors.New("use only digits, one decimal separator and thousands dots, e.g. 1.234,56")
	ErrAmountNegative  = errors.New("the amount must be positive")
	ErrAmountZero      = errors.New("the amount must be more than zero")
	ErrAmountDecimals  = errors.New("at most 2 decimal places (centavos)")
	ErrAmountGrouping  = errors.New("thousands groups must have 3 digits, e.g. 1.234.567,89")
	ErrAmountAmbiguous = errors.New("ambiguous: after a single separator write 1-2 decimals or 3 digits of thousands")
	ErrAmountTooLarge  = errors.New("the amount is too large")
)

// Parse reads an amount of money the way people type it and returns it
// in centavos. The rule:
//
//   - Spaces around the amount and an optional "R$" prefix (any case,
//     spaces after it allowed) are ignored. Nothing else but digits, '.' and
//     ',' is accepted; there is no sign.
//   - When both '.' and ',' appear, the one that appears last is the decimal
//     separator (it must appear once) and the other one separates thousands:
//     "1.234,56" and "1,234.56" are both R$ 1.234,56.
//   - When one kind of separator appears several times, it separates
//     thousands: "1.234.567" is R$ 1.234.567,00.
//   - When a single separator appears once, it is decimal if 1 or 2 digits
//     follow it ("50.5", "50,5" and "50,50" are R$ 50,50) and it separates
//     thousands if exactly 3 digits follow it ("1.234" and "1,234" are
//     R$ 1.234,00). When nothing or a number starting with 0 comes before
//     it, it is decimal whatever follows, so "0,001" has too many decimals.
//     Any other count is rejected as ambiguous.
//   - Thousands groups after the first have exactly 3 digits; the first has
//     1 to 3 and does not start with 0. At most 2 decimals; ",5" is R$ 0,50.
//   - The amount must be more than zero and fit in an int64 of centavos.
func Parse(s string) (Cents, error) {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && strings.EqualFold(s[:2], "R$") {
		s = strings.TrimSpace(s[2:])
	}
	if s == "" {
		return 0, ErrAmountEmpty
	}
	if s[0] == '-' {
		return 0, ErrAmountNegative
	}
	dots, commas := 0, 0
	lastDot, lastComma := -1, -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.':
			dots++
			lastDot = i
		case c == ',':
			commas++
			lastComma = i
		default:
			return 0, ErrAmountChars
		}
	}

	var intPart, fracPart string
	var thousands byte // 0: no thousands separator in intPart
	switch {
	case dots > 0 && commas > 0:
		dec, th, decCount := byte(','), byte('.'), commas
		if lastDot > lastComma {
			dec, th, decCount = '.', ',', dots
		}
		if decCount > 1 {
			return 0, ErrAmountChars
		}
		i := strings.IndexByte(s, dec)
		intPart, fracPart, thousands = s[:i], s[i+1:], th
		if fracPart == "" {
			return 0, ErrAmountDecimals
		}
	case dots+commas > 1:
		intPart, thousands = s, '.'
		if commas > 0 {
			thousands = ','
		}
	case dots+commas == 1:
		i := max(lastDot, lastComma)
		switch after := len(s) - i - 1; {
		case after == 1 || after == 2:
			intPart, fracPart = s[:i], s[i+1:]
		case after >= 3 && (i == 0 || s[0] == '0'):
			// Nothing or a leading 0 before it: it cannot separate
			// thousands, so it is a decimal separator with too many
			// decimals ("0,001", ",125").
			return 0, ErrAmountDecimals
		case after == 3:
			intPart, thousands = s, s[i]
		default:
			return 0, ErrAmountAmbiguous
		}
	default:
		intPart = s
	}

	if thousands != 0 {
		groups := strings.Split(intPart, string(thousands))
		if len(groups[0]) < 1 || len(groups[0]) > 3 || groups[0][0] == '0' {
			return 0, ErrAmountGrouping
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return 0, ErrAmountGrouping
			}
		}
		intPart = strings.Join(groups, "")
	}
	if len(fracPart) > 2 {
		return 0, ErrAmountDecimals
	}
	if intPart == "" && fracPart == "" {
		return 0, ErrAmountEmpty
	}

	var whole uint64
	for i := 0; i < len(intPart); i++ {
		d := uint64(intPart[i] - '0')
		if whole > (math.MaxInt64/100-d)/10 {
			return 0, ErrAmountTooLarge
		}
		whole = whole*10 + d
	}
	var frac uint64
	for i := 0; i < 2; i++ {
		frac *= 10
		if i < len(fracPart) {
			frac += uint64(fracPart[i] - '0')
		}
	}
	total := whole*100 + frac
	if total > math.MaxInt64 {
		return 0, ErrAmountTooLarge
	}
	if total == 0 {
		return 0, ErrAmountZero
	}
	return Cents(total), nil
}
