package watch

import (
	"image/color"

	"atm/ui/theme"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
)

// Styles are the diagram's styles: the ATM's palette (see ui.NewStyles),
// for a dark or light background. Without colour (NO_COLOR) the diagram
// still reads through its marks: ● send, ◆ receive, ■ local, the gutter's
// a, b, ▲ (causal past) and ▼ (causal future), and bold text.
type Styles struct {
	IsDark bool

	Accent, Good, Bad, Warn, Muted, Push, Send, Recv color.Color

	TitleBar   lipgloss.Style
	TitleBrand lipgloss.Style
	TitleInfo  lipgloss.Style

	Lane     lipgloss.Style // the lane headers
	Life     lipgloss.Style // the lifelines
	Text     lipgloss.Style
	Dim      lipgloss.Style
	Label    lipgloss.Style
	Value    lipgloss.Style
	Hint     lipgloss.Style
	SendMark lipgloss.Style
	RecvMark lipgloss.Style
	Local    lipgloss.Style
	Line     lipgloss.Style // message lines
	Unknown  lipgloss.Style // an unknown receive
	Cursor   lipgloss.Style // the cursor's gutter and event
	Selected lipgloss.Style // the events a and b
	Past     lipgloss.Style // the causal past of a
	Future   lipgloss.Style // the causal future of a
	Verdict  lipgloss.Style
	Lesson   lipgloss.Style
	Error    lipgloss.Style
	Warning  lipgloss.Style
	Rule     lipgloss.Style
	Help     help.Styles
}

// NewStyles returns the styles for a dark or light background.
func NewStyles(isDark bool) *Styles {
	p := theme.New(isDark)
	s := &Styles{IsDark: isDark}
	s.Accent, s.Good, s.Bad, s.Warn, s.Muted = p.Accent, p.Good, p.Bad, p.Warn, p.Muted
	s.Push, s.Send, s.Recv = p.Push, p.Send, p.Recv
	text, barBG, barFG := p.Text, p.BarBG, p.BarFG

	s.TitleBar = lipgloss.NewStyle().Background(barBG).Foreground(barFG)
	s.TitleBrand = lipgloss.NewStyle().Background(barBG).Foreground(p.Brand).Bold(true)
	s.TitleInfo = lipgloss.NewStyle().Background(barBG).Foreground(barFG)

	s.Lane = lipgloss.NewStyle().Foreground(s.Accent).Bold(true)
	s.Life = lipgloss.NewStyle().Foreground(s.Muted)
	s.Text = lipgloss.NewStyle().Foreground(text)
	s.Dim = lipgloss.NewStyle().Foreground(s.Muted)
	s.Label = lipgloss.NewStyle().Foreground(s.Muted)
	s.Value = lipgloss.NewStyle().Foreground(text).Bold(true)
	s.Hint = lipgloss.NewStyle().Foreground(s.Muted).Italic(true)
	s.SendMark = lipgloss.NewStyle().Foreground(s.Send).Bold(true)
	s.RecvMark = lipgloss.NewStyle().Foreground(s.Recv).Bold(true)
	s.Local = lipgloss.NewStyle().Foreground(text)
	s.Line = lipgloss.NewStyle().Foreground(s.Muted)
	s.Unknown = lipgloss.NewStyle().Foreground(s.Warn).Bold(true)
	s.Cursor = lipgloss.NewStyle().Foreground(s.Accent).Bold(true).Underline(true)
	s.Selected = lipgloss.NewStyle().Foreground(s.Accent).Bold(true).Reverse(true)
	s.Past = lipgloss.NewStyle().Foreground(s.Push).Bold(true)
	s.Future = lipgloss.NewStyle().Foreground(s.Warn).Bold(true)
	s.Verdict = lipgloss.NewStyle().Foreground(s.Accent).Bold(true)
	s.Lesson = lipgloss.NewStyle().Foreground(s.Warn).Bold(true)
	s.Error = lipgloss.NewStyle().Foreground(s.Bad).Bold(true)
	s.Warning = lipgloss.NewStyle().Foreground(s.Warn).Bold(true)
	s.Rule = lipgloss.NewStyle().Foreground(s.Muted)

	s.Help = help.DefaultStyles(isDark)
	s.Help.ShortKey = s.Help.ShortKey.Foreground(s.Accent).Bold(true)
	s.Help.FullKey = s.Help.FullKey.Foreground(s.Accent).Bold(true)
	s.Help.ShortDesc = s.Help.ShortDesc.Foreground(s.Muted)
	s.Help.FullDesc = s.Help.FullDesc.Foreground(s.Muted)
	s.Help.ShortSeparator = s.Help.ShortSeparator.Foreground(s.Muted)
	s.Help.FullSeparator = s.Help.FullSeparator.Foreground(s.Muted)
	s.Help.Ellipsis = s.Help.Ellipsis.Foreground(s.Muted)
	return s
}
