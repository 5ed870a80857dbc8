package money

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	ok := []struct {
		in   string
		want Cents
	}{
		{"50", 5000},
		{"50.5", 5050},
		{"50,5", 5050},
		{"50,50", 5050},
		{"50.05", 5005},
		{"1.234,56", 123456},
		{"1,234.56", 123456},
		{"R$ 1.234,56", 123456},
		{"r$1.234,56", 123456},
		{"  R$   7  ", 700},
		{"1.234", 123400},
		{"1,234", 123400},
		{"1.234.567", 123456700},
		{"1,234,567", 123456700},
		{"1.234.567,89", 123456789},
		{",5", 50},
		{".05", 5},
		{"0,01", 1},
		{"007", 700},
		{"92233720368547758.07", 9223372036854775807},
		{"1,234.5", 123450},
		{"1.234,5", 123450},
		{"12.345.678,90", 1234567890},
		{" r$ 0,5 ", 50},
		{"000,50", 50},
		{"999", 99900},
		{"1.000", 100000},
		{"0.99", 99},
		{"92.233.720.368.547.758,07", 9223372036854775807},
	}
	for _, c := range ok {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}

	bad := []struct {
		in   string
		want error
	}{
		{"", ErrAmountEmpty},
		{"R$", ErrAmountEmpty},
		{"   ", ErrAmountEmpty},
		{"abc", ErrAmountChars},
		{"5-", ErrAmountChars},
		{"1 000", ErrAmountChars},
		{"US$ 5", ErrAmountChars},
		{"-5", ErrAmountNegative},
		{"R$ -5", ErrAmountNegative},
		{"0", ErrAmountZero},
		{"0,00", ErrAmountZero},
		{"1.234,567", ErrAmountDecimals},
		{"1.234,", ErrAmountDecimals},
		{"1,2,3.45", ErrAmountGrouping},
		{"1.2.3", ErrAmountGrouping},
		{"12.34.567", ErrAmountGrouping},
		{"1234.567,00", ErrAmountGrouping},
		{"0.500", ErrAmountDecimals},
		{"0,001", ErrAmountDecimals},
		{"0.1234", ErrAmountDecimals},
		{",125", ErrAmountDecimals},
		{"01.234", ErrAmountDecimals},
		{"1.234.56,7", ErrAmountGrouping},
		{"1,23.45,6", ErrAmountChars},
		{"5.", ErrAmountAmbiguous},
		{"5.1234", ErrAmountAmbiguous},
		{".", ErrAmountAmbiguous},
		{".123", ErrAmountDecimals},
		{"1.2345", ErrAmountAmbiguous},
		{"92233720368547758.08", ErrAmountTooLarge},
		{"99999999999999999999999", ErrAmountTooLarge},
		{"92.233.720.368.547.758,08", ErrAmountTooLarge},
		{"922337203685477581", ErrAmountTooLarge},
		{"R$-5", ErrAmountNegative},
		{"R$ R$ 5", ErrAmountChars},
		{"5 R$", ErrAmountChars},
		{"+5", ErrAmountChars},
		{"1e3", ErrAmountChars},
		{".,5", ErrAmountGrouping},
		{"1,5.25", ErrAmountGrouping},
		{"1.234.5", ErrAmountGrouping},
		{"1..234", ErrAmountGrouping},
		{"0.000.000", ErrAmountGrouping},
		{"1.234.567,", ErrAmountDecimals},
		{"1,234.567", ErrAmountDecimals},
		{"1.2.3,4.5", ErrAmountChars},
		{"5,", ErrAmountAmbiguous},
		{"5,1234", ErrAmountAmbiguous},
		{"0,", ErrAmountAmbiguous},
		{",", ErrAmountAmbiguous},
		{"0,000", ErrAmountDecimals},
		{"00,00", ErrAmountZero},
		{".00", ErrAmountZero},
	}
	for _, c := range bad {
		got, err := Parse(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("Parse(%q) = %d, %v; want error %v", c.in, got, err, c.want)
		}
	}
}

// Every amount formatted the way the app shows it parses back to itself.
func TestParseAmountRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []Cents{1, 9, 10, 99, 100, 5050, 99999, 100000, 123456789, 1<<62 + 12345} {
		got, err := Parse(c.String())
		if err != nil || got != c {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.String(), got, err, c)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"50", "50.5", "1.234,56", "R$ 1.234,56", ",5", "1,234.56", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if c <= 0 {
			t.Fatalf("Parse(%q) = %d without error", s, c)
		}
		back, err := Parse(c.String())
		if err != nil || back != c {
			t.Fatalf("Parse(%d.String()) = %d, %v", c, back, err)
		}
	})
}
