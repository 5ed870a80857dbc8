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
	s = trimAmount(s)
	seps, err := scanAmount(s)
	if err != nil {
		return 0, err
	}
	p, err := splitAmount(s, seps)
	if err != nil {
		return 0, err
	}
	if p.whole, err = ungroup(p.whole, p.thousands); err != nil {
		return 0, err
	}
	if len(p.frac) > 2 {
		return 0, ErrAmountDecimals
	}
	if p.whole == "" && p.frac == "" {
		return 0, ErrAmountEmpty
	}
	return centsOf(p.whole, p.frac)
}

// trimAmount drops the spaces around an amount and its "R$" prefix.
func trimAmount(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && strings.EqualFold(s[:2], "R$") {
		s = strings.TrimSpace(s[2:])
	}
	return s
}

// separators are the counts and last places of the '.' and ',' of an
// amount (-1: none).
type separators struct {
	dots, commas       int
	lastDot, lastComma int
}

// scanAmount checks that s is an amount written with digits and
// separators only, and finds its separators.
func scanAmount(s string) (separators, error) {
	if s == "" {
		return separators{}, ErrAmountEmpty
	}
	if s[0] == '-' {
		return separators{}, ErrAmountNegative
	}
	seps := separators{lastDot: -1, lastComma: -1}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.':
			seps.dots++
			seps.lastDot = i
		case c == ',':
			seps.commas++
			seps.lastComma = i
		default:
			return separators{}, ErrAmountChars
		}
	}
	return seps, nil
}

// amountParts is an amount split at its decimal separator: the whole
// part, still with its thousands separator (0: none), and the decimals.
type amountParts struct {
	whole, frac string
	thousands   byte
}

// splitAmount tells the decimal separator of s from its thousands
// separator, by Parse's rule, and splits s at the decimal one.
func splitAmount(s string, seps separators) (amountParts, error) {
	switch {
	case seps.dots > 0 && seps.commas > 0:
		return splitBoth(s, seps)
	case seps.dots+seps.commas > 1: // one kind, several times: thousands
		thousands := byte('.')
		if seps.commas > 0 {
			thousands = ','
		}
		return amountParts{whole: s, thousands: thousands}, nil
	case seps.dots+seps.commas == 1:
		return splitSingle(s, max(seps.lastDot, seps.lastComma))
	}
	return amountParts{whole: s}, nil
}

// splitBoth splits an amount with both separators: the last to appear is
// the decimal one, and appears once; the other separates thousands.
func splitBoth(s string, seps separators) (amountParts, error) {
	dec, thousands, decCount := byte(','), byte('.'), seps.commas
	if seps.lastDot > seps.lastComma {
		dec, thousands, decCount = '.', ',', seps.dots
	}
	if decCount > 1 {
		return amountParts{}, ErrAmountChars
	}
	i := strings.IndexByte(s, dec)
	p := amountParts{whole: s[:i], frac: s[i+1:], thousands: thousands}
	if p.frac == "" {
		return amountParts{}, ErrAmountDecimals
	}
	return p, nil
}

// splitSingle splits an amount whose only separator is at i: decimal
// before 1 or 2 digits, thousands before 3, unless nothing or a leading 0
// comes before it.
func splitSingle(s string, i int) (amountParts, error) {
	switch after := len(s) - i - 1; {
	case after == 1 || after == 2:
		return amountParts{whole: s[:i], frac: s[i+1:]}, nil
	case after >= 3 && (i == 0 || s[0] == '0'):
		// Nothing or a leading 0 before it: it cannot separate
		// thousands, so it is a decimal separator with too many
		// decimals ("0,001", ",125").
		return amountParts{}, ErrAmountDecimals
	case after == 3:
		return amountParts{whole: s, thousands: s[i]}, nil
	}
	return amountParts{}, ErrAmountAmbiguous
}

// ungroup drops the thousands separator from whole, once its groups are
// checked: the first of 1 to 3 digits, not starting with 0, the others of
// 3.
func ungroup(whole string, thousands byte) (string, error) {
	if thousands == 0 {
		return whole, nil
	}
	groups := strings.Split(whole, string(thousands))
	if len(groups[0]) < 1 || len(groups[0]) > 3 || groups[0][0] == '0' {
		return "", ErrAmountGrouping
	}
	for _, g := range groups[1:] {
		if len(g) != 3 {
			return "", ErrAmountGrouping
		}
	}
	return strings.Join(groups, ""), nil
}

// centsOf is the amount of whole reais and up to 2 decimals, digits only,
// in centavos: more than zero, and within an int64.
func centsOf(whole, frac string) (Cents, error) {
	var reais uint64
	for i := 0; i < len(whole); i++ {
		d := uint64(whole[i] - '0')
		if reais > (math.MaxInt64/100-d)/10 {
			return 0, ErrAmountTooLarge
		}
		reais = reais*10 + d
	}
	var centavos uint64
	for i := 0; i < 2; i++ {
		centavos *= 10
		if i < len(frac) {
			centavos += uint64(frac[i] - '0')
		}
	}
	total := reais*100 + centavos
	if total > math.MaxInt64 {
		return 0, ErrAmountTooLarge
	}
	if total == 0 {
		return 0, ErrAmountZero
	}
	return Cents(total), nil
}
