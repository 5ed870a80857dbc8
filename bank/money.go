package bank

import (
	"strconv"
	"strings"
)

// String formats an amount the Brazilian way: "R$ 1.234,56", "-R$ 0,50".
func (c Cents) String() string {
	neg := c < 0
	u := uint64(c)
	if neg {
		u = -u
	}
	whole := strconv.FormatUint(u/100, 10)
	frac := u % 100
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString("R$ ")
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(r)
	}
	b.WriteByte(',')
	b.WriteByte(byte('0' + frac/10))
	b.WriteByte(byte('0' + frac%10))
	return b.String()
}

// addCents returns a+b, or ErrOverflow if the sum does not fit in int64.
func addCents(a, b Cents) (Cents, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, ErrOverflow
	}
	return s, nil
}

// ValidAccountID reports whether id is 1 to 20 ASCII digits (the holder's RG).
func ValidAccountID(id string) bool { return digits(id, 1, 20) }

func validPIN(pin string) bool { return digits(pin, 4, 12) }

// digits reports whether s is lo to hi ASCII digits.
func digits(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
