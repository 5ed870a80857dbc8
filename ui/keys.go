package ui

import "charm.land/bubbles/v2/key"

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
	Confirm     key.Binding // y only: never the key that submitted the step before
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

// DefaultKeyMap returns the key bindings of the app.
func DefaultKeyMap() *KeyMap {
	return &KeyMap{
		Up:         key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:       key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Select:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "select")),
		Shortcut:   key.NewBinding(key.WithKeys("1", "2", "3", "4", "5", "6"), key.WithHelp("1-6", "shortcut")),
		Back:       key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Quit:       key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
		QuitTyping: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		NextField:  key.NewBinding(key.WithKeys("tab", "down"), key.WithHelp("tab", "next field")),
		PrevField:  key.NewBinding(key.WithKeys("shift+tab", "up"), key.WithHelp("shift+tab", "previous")),
		Submit:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "continue")),
		Confirm:    key.NewBinding(key.WithKeys("y", "Y"), key.WithHelp("y", "confirm")),
		Cancel:     key.NewBinding(key.WithKeys("n", "N", "esc"), key.WithHelp("n", "back")),
		PageUp:     key.NewBinding(key.WithKeys("pgup", "b"), key.WithHelp("pgup", "page up")),
		PageDown:   key.NewBinding(key.WithKeys("pgdown", "f", "space"), key.WithHelp("pgdn", "page down")),
		Top:        key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("g", "newest")),
		Bottom:     key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("G", "oldest")),
		More:       key.NewBinding(key.WithKeys("m"), key.WithHelp("m", "load older")),
		Retry:      key.NewBinding(key.WithKeys("r", "enter"), key.WithHelp("r", "retry now")),
		Dismiss:    key.NewBinding(key.WithKeys("enter", "esc"), key.WithHelp("enter", "back to menu")),
		Legend:     key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "clock legend")),
		TypeAhead:  key.NewBinding(key.WithKeys("typing"), key.WithHelp("typing", "kept for the next screen")),
		Reconnect:  key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "retry now")),
		Diagram:    key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "diagram")),
	}
}
