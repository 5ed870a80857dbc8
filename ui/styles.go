package ui

import (
	"image/color"

	"atm/ui/theme"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/textinput"
	"charm.land/lipgloss/v2"
)

// Styles holds every style of the app. Colours are picked for the terminal's
// background (light or dark); with NO_COLOR set the program renders without
// colour and the layout still reads through bold text and markers.
type Styles struct {
	IsDark bool

	// Palette.
	Accent, Good, Bad, Warn, Muted, Push, Send, Recv color.Color

	TitleBar   lipgloss.Style // full-width bar at the top
	TitleBrand lipgloss.Style
	TitleInfo  lipgloss.Style

	Screen      lipgloss.Style // the ATM panel (bordered)
	ScreenHead  lipgloss.Style // account/holder/balance line
	ScreenRule  lipgloss.Style
	PageTitle   lipgloss.Style
	Text        lipgloss.Style
	Dim         lipgloss.Style
	Label       lipgloss.Style
	Value       lipgloss.Style
	Money       lipgloss.Style
	BigMoney    lipgloss.Style
	Error       lipgloss.Style
	Success     lipgloss.Style
	Warning     lipgloss.Style
	Hint        lipgloss.Style
	MenuItem    lipgloss.Style
	MenuCurrent lipgloss.Style
	MenuKey     lipgloss.Style
	Field       lipgloss.Style // label in front of an input
	Keycap      lipgloss.Style

	Clock        lipgloss.Style // the clock panel (bordered)
	ClockTitle   lipgloss.Style
	ClockProc    lipgloss.Style
	ClockDigits  lipgloss.Style
	ClockFlash   lipgloss.Style // the digits right after a change
	ClockRule    lipgloss.Style
	TimeSend     lipgloss.Style
	TimeRecv     lipgloss.Style
	TimePush     lipgloss.Style
	TimeErr      lipgloss.Style
	TimeRule     lipgloss.Style // the max+1 arithmetic
	TimeLatest   lipgloss.Style // marker of the newest entry
	BannerBad    lipgloss.Style
	BannerGood   lipgloss.Style
	BannerInfo   lipgloss.Style
	BannerPush   lipgloss.Style
	TooSmall     lipgloss.Style
	Help         help.Styles
	Table        table.Styles
	Input        textinput.Styles
	SpinnerStyle lipgloss.Style
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

	s.Screen = lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(s.Accent).Padding(0, 1)
	s.ScreenHead = lipgloss.NewStyle().Foreground(text).Bold(true)
	s.ScreenRule = lipgloss.NewStyle().Foreground(s.Muted)
	s.PageTitle = lipgloss.NewStyle().Foreground(s.Accent).Bold(true)
	s.Text = lipgloss.NewStyle().Foreground(text)
	s.Dim = lipgloss.NewStyle().Foreground(s.Muted)
	s.Label = lipgloss.NewStyle().Foreground(s.Muted)
	s.Value = lipgloss.NewStyle().Foreground(text).Bold(true)
	s.Money = lipgloss.NewStyle().Foreground(text).Bold(true)
	s.BigMoney = lipgloss.NewStyle().Foreground(s.Good).Bold(true)
	s.Error = lipgloss.NewStyle().Foreground(s.Bad).Bold(true)
	s.Success = lipgloss.NewStyle().Foreground(s.Good).Bold(true)
	s.Warning = lipgloss.NewStyle().Foreground(s.Warn).Bold(true)
	s.Hint = lipgloss.NewStyle().Foreground(s.Muted).Italic(true)
	s.MenuItem = lipgloss.NewStyle().Foreground(text)
	s.MenuCurrent = lipgloss.NewStyle().Foreground(s.Accent).Bold(true)
	s.MenuKey = lipgloss.NewStyle().Foreground(s.Muted)
	s.Field = lipgloss.NewStyle().Foreground(text).Bold(true)
	s.Keycap = lipgloss.NewStyle().Foreground(s.Accent).Bold(true)

	s.Clock = lipgloss.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(s.Muted).Padding(0, 1)
	s.ClockTitle = lipgloss.NewStyle().Foreground(s.Accent).Bold(true)
	s.ClockProc = lipgloss.NewStyle().Foreground(text).Bold(true)
	s.ClockDigits = lipgloss.NewStyle().Foreground(s.Accent)
	s.ClockFlash = lipgloss.NewStyle().Foreground(s.Warn).Bold(true)
	s.ClockRule = lipgloss.NewStyle().Foreground(s.Muted)
	s.TimeSend = lipgloss.NewStyle().Foreground(s.Send)
	s.TimeRecv = lipgloss.NewStyle().Foreground(s.Recv)
	s.TimePush = lipgloss.NewStyle().Foreground(s.Push).Bold(true)
	s.TimeErr = lipgloss.NewStyle().Foreground(s.Bad)
	s.TimeRule = lipgloss.NewStyle().Foreground(text)
	s.TimeLatest = lipgloss.NewStyle().Foreground(s.Warn).Bold(true)

	s.BannerBad = lipgloss.NewStyle().Foreground(s.Bad).Bold(true)
	s.BannerGood = lipgloss.NewStyle().Foreground(s.Good).Bold(true)
	s.BannerInfo = lipgloss.NewStyle().Foreground(s.Muted)
	s.BannerPush = lipgloss.NewStyle().Foreground(s.Push).Bold(true)
	s.TooSmall = lipgloss.NewStyle().Foreground(s.Warn).Bold(true)

	// The bubbles defaults are too faint to read (WCAG AA asks 4.5:1).
	s.Help = help.DefaultStyles(isDark)
	s.Help.ShortKey = s.Help.ShortKey.Foreground(s.Accent).Bold(true)
	s.Help.FullKey = s.Help.FullKey.Foreground(s.Accent).Bold(true)
	s.Help.ShortDesc = s.Help.ShortDesc.Foreground(s.Muted)
	s.Help.FullDesc = s.Help.FullDesc.Foreground(s.Muted)
	s.Help.ShortSeparator = s.Help.ShortSeparator.Foreground(s.Muted)
	s.Help.FullSeparator = s.Help.FullSeparator.Foreground(s.Muted)
	s.Help.Ellipsis = s.Help.Ellipsis.Foreground(s.Muted)

	s.Table = table.Styles{
		Header:   lipgloss.NewStyle().Foreground(s.Muted).Bold(true).Padding(0, 1, 0, 0),
		Cell:     lipgloss.NewStyle().Padding(0, 1, 0, 0),
		Selected: lipgloss.NewStyle().Foreground(s.Accent).Bold(true).Reverse(true),
	}
	s.Input = textinput.DefaultStyles(isDark)
	for _, st := range []*textinput.StyleState{&s.Input.Focused, &s.Input.Blurred} {
		st.Prompt = st.Prompt.Foreground(s.Accent)
		st.Placeholder = st.Placeholder.Foreground(s.Muted)
		st.Suggestion = st.Suggestion.Foreground(s.Muted)
	}
	s.Input.Blurred.Text = s.Input.Blurred.Text.Foreground(text)
	s.Input.Cursor.Color = s.Accent
	s.SpinnerStyle = lipgloss.NewStyle().Foreground(s.Accent)
	return s
}
