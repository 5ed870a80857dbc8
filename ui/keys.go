package ui

import (
	"strings"

	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
)

// KeyMap holds every key binding of the app. Screens pick the ones they use
// for their help line.
type KeyMap struct {
	Up, Down    key.Binding
	Select      key.Binding
	Shortcut    key.Binding // 1-6 in the menu
	Back        key.Binding
	Quit        key.Binding // q or ctrl+c where no text is typed
	QuitTyping  key.Binding // ctrl+c only, on screens with a text field
	NextField   key.Binding
	PrevField   key.Binding
	Submit      key.Binding
	Confirm     key.Binding // y (s too in Portuguese): never the key that submitted the step before
	Cancel      key.Binding
	PageUp      key.Binding
	PageDown    key.Binding
	Top, Bottom key.Binding
	More        key.Binding
	Retry       key.Binding
	Dismiss     key.Binding
	Legend      key.Binding // opens the clock panel's legend
	// TypeAhead only explains, in the help bar while the ATM waits for the
	// bank, that keys typed then are kept for the next screen.
	TypeAhead key.Binding
	Reconnect key.Binding // r while offline: try the connection now
	Diagram   key.Binding // d in the menu: the space-time diagram
}

// DefaultKeyMap returns the key bindings of the app, with English help.
func DefaultKeyMap() *KeyMap { return NewKeyMap(i18n.For(i18n.English)) }

// NewKeyMap returns the key bindings of the app with their help in tr's
// language. Confirming takes y in every language, and the language's own
// "yes" key (s for sim in Portuguese), which the help shows.
func NewKeyMap(tr *i18n.Printer) *KeyMap {
	h := func(k i18n.Key) string { return tr.T(k) }
	yes := tr.T(i18n.KeyConfirmKey)
	confirm := []string{"y", "Y"}
	if yes != "y" {
		confirm = append(confirm, yes, strings.ToUpper(yes))
	}
	return &KeyMap{
		Up:         key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", h(i18n.KeyUp))),
		Down:       key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", h(i18n.KeyDown))),
		Select:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", h(i18n.KeySelect))),
		Shortcut:   key.NewBinding(key.WithKeys("1", "2", "3", "4", "5", "6"), key.WithHelp("1-6", h(i18n.KeyShortcut))),
		Back:       key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", h(i18n.KeyBack))),
		Quit:       key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", h(i18n.KeyQuit))),
		QuitTyping: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", h(i18n.KeyQuit))),
		NextField:  key.NewBinding(key.WithKeys("tab", "down"), key.WithHelp("tab", h(i18n.KeyNextField))),
		PrevField:  key.NewBinding(key.WithKeys("shift+tab", "up"), key.WithHelp("shift+tab", h(i18n.KeyPrevField))),
		Submit:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", h(i18n.KeyContinue))),
		Confirm:    key.NewBinding(key.WithKeys(confirm...), key.WithHelp(yes, h(i18n.KeyConfirm))),
		Cancel:     key.NewBinding(key.WithKeys("n", "N", "esc"), key.WithHelp("n", h(i18n.KeyBack))),
		PageUp:     key.NewBinding(key.WithKeys("pgup", "b"), key.WithHelp("pgup", h(i18n.KeyPageUp))),
		PageDown:   key.NewBinding(key.WithKeys("pgdown", "f", "space"), key.WithHelp("pgdn", h(i18n.KeyPageDown))),
		Top:        key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g", h(i18n.KeyNewest))),
		Bottom:     key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G", h(i18n.KeyOldest))),
		More:       key.NewBinding(key.WithKeys("m"), key.WithHelp("m", h(i18n.KeyMore))),
		Retry:      key.NewBinding(key.WithKeys("r", "enter"), key.WithHelp("r", h(i18n.KeyRetry))),
		Dismiss:    key.NewBinding(key.WithKeys("enter", "esc"), key.WithHelp("enter", h(i18n.KeyMenu))),
		Legend:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", h(i18n.KeyLegend))),
		TypeAhead:  key.NewBinding(key.WithKeys("typing"), key.WithHelp(h(i18n.KeyTyping), h(i18n.KeyTypeAhead))),
		Reconnect:  key.NewBinding(key.WithKeys("r"), key.WithHelp("r", h(i18n.KeyRetry))),
		Diagram:    key.NewBinding(key.WithKeys("d"), key.WithHelp("d", h(i18n.KeyDiagram))),
	}
}
