// Package money is the vocabulary of the bank's money: amounts in integer
// centavos (never a float), read the way people type them and written the
// Brazilian way, and account numbers. It imports nothing of the system's
// own, so that the ATM and the client library can use it without the
// ledger.
package money

import (
	"strconv"
	"strings"
)

// Cents is an amount of money in minor units (centavos).
type Cents int64

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

// ValidAccountID reports whether id is 1 to 20 ASCII digits (the holder's RG).
func ValidAccountID(id string) bool { return Digits(id, 1, 20) }

// Digits reports whether s is lo to hi ASCII digits.
func Digits(s string, lo, hi int) bool {
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
