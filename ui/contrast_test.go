package ui

import (
	"fmt"
	"image/color"
	"math"
	"reflect"
	"testing"

	"charm.land/lipgloss/v2"
)

// Terminal backgrounds the styles are checked against: the styles set no
// background of their own (except the title bar), so text sits on whatever
// the terminal uses, dark or light.
var (
	darkBackgrounds  = []string{"#000000", "#1c1c1c", "#282828"}
	lightBackgrounds = []string{"#ffffff", "#f2f2f2"}
)

// luminance is the relative luminance of a colour, per WCAG 2.x.
func luminance(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	lin := func(v uint32) float64 {
		s := float64(v) / 0xffff
		if s <= 0.04045 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(b)
}

// contrast is the WCAG contrast ratio of two colours, from 1 to 21.
func contrast(a, b color.Color) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func isNoColor(c color.Color) bool {
	_, ok := c.(lipgloss.NoColor)
	return c == nil || ok
}

// textPair is the foreground and background a style draws its text with on
// the terminal background bg; ok is false when the style leaves the text in
// the terminal's own colours.
func textPair(st lipgloss.Style, bg color.Color) (fg, back color.Color, ok bool) {
	fg, back = st.GetForeground(), st.GetBackground()
	if isNoColor(back) {
		back = bg
	}
	if isNoColor(fg) {
		return nil, nil, false
	}
	if st.GetReverse() {
		fg, back = back, fg
	}
	return fg, back, true
}

// eachStyle calls fn with every lipgloss.Style inside v (a struct), named by
// its path.
func eachStyle(path string, v reflect.Value, fn func(name string, st lipgloss.Style)) {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Type() == reflect.TypeFor[lipgloss.Style]() {
		fn(path, v.Interface().(lipgloss.Style))
		return
	}
	if v.Kind() != reflect.Struct {
		return
	}
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		eachStyle(path+"."+f.Name, v.Field(i), fn)
	}
}

// TestTextContrast: every text style meets WCAG AA (4.5:1) against its
// background, on dark and light terminals.
func TestTextContrast(t *testing.T) {
	t.Parallel()
	for _, dark := range []bool{true, false} {
		bgs := lightBackgrounds
		if dark {
			bgs = darkBackgrounds
		}
		s := NewStyles(dark)
		n := 0
		for _, bgHex := range bgs {
			bg := lipgloss.Color(bgHex)
			eachStyle("Styles", reflect.ValueOf(s), func(name string, st lipgloss.Style) {
				fg, back, ok := textPair(st, bg)
				if !ok {
					return
				}
				n++
				if r := contrast(fg, back); r < 4.5 {
					t.Errorf("dark=%v on %s: %s has contrast %.2f:1 (%s on %s), want at least 4.5:1",
						dark, bgHex, name, r, hex(fg), hex(back))
				}
			})
		}
		if n < 40 {
			t.Errorf("dark=%v: only %d style/background pairs checked", dark, n)
		}
	}
}

func hex(c color.Color) string {
	r, g, b, _ := c.RGBA()
	return fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8)
}

// The formula itself, on known values.
func TestContrastFormula(t *testing.T) {
	t.Parallel()
	cases := []struct {
		a, b string
		want float64
	}{
		{"#000000", "#ffffff", 21},
		{"#ffffff", "#ffffff", 1},
		{"#777777", "#ffffff", 4.48},
		{"#767676", "#ffffff", 4.54},
	}
	for _, c := range cases {
		if got := contrast(lipgloss.Color(c.a), lipgloss.Color(c.b)); math.Abs(got-c.want) > 0.01 {
			t.Errorf("contrast(%s, %s) = %.3f, want %.2f", c.a, c.b, got, c.want)
		}
	}
}
