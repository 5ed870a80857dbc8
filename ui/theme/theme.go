// Package theme is the palette every screen of atm draws with (the ATM,
// atm watch): one set of colours for a dark terminal and one for a light
// one, each meeting WCAG AA contrast on its background (ui's contrast test
// checks the styles built from it).
package theme

import (
	"image/color"

	"charm.land/lipgloss/v2"
)

// Palette is the colours of one background.
type Palette struct {
	Accent, Good, Bad, Warn, Muted color.Color
	Push, Send, Recv               color.Color
	Text                           color.Color
	BarBG, BarFG, Brand            color.Color // the title bar
}

// New returns the palette for a dark or light background.
func New(isDark bool) Palette {
	ld := lipgloss.LightDark(isDark)
	c := lipgloss.Color
	return Palette{
		Accent: ld(c("#1d4ed8"), c("#7aa2f7")),
		Good:   ld(c("#166534"), c("#73daca")),
		Bad:    ld(c("#b91c1c"), c("#f7768e")),
		Warn:   ld(c("#854d0e"), c("#e0af68")),
		Muted:  ld(c("#4b5563"), c("#8b93b0")),
		Push:   ld(c("#a21caf"), c("#d4a6ff")),
		Send:   ld(c("#1d4ed8"), c("#7dcfff")),
		Recv:   ld(c("#166534"), c("#9ece6a")),
		Text:   ld(c("#1f2937"), c("#d7dae0")),
		BarBG:  ld(c("#1e3a8a"), c("#24335a")),
		BarFG:  c("#f8fafc"),
		Brand:  c("#fde68a"),
	}
}
