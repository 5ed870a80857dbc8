package watch

import "charm.land/bubbles/v2/key"

// KeyMap holds the diagram's keys.
type KeyMap struct {
	Follow              key.Binding // space or p: pause or follow
	Up, Down            key.Binding
	PageUp, PageDown    key.Binding
	Oldest, Newest      key.Binding
	LaneLeft, LaneRight key.Binding
	Select              key.Binding // enter: event a
	Mark                key.Binding // x: event b
	Clear               key.Binding // esc
	Quit                key.Binding
}

// DefaultKeyMap returns the diagram's keys.
func DefaultKeyMap() *KeyMap {
	return &KeyMap{
		Follow:    key.NewBinding(key.WithKeys("space", "p"), key.WithHelp("space/p", "pause/follow")),
		Up:        key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "earlier")),
		Down:      key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "later")),
		PageUp:    key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up")),
		PageDown:  key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "page down")),
		Oldest:    key.NewBinding(key.WithKeys("home"), key.WithHelp("home", "oldest")),
		Newest:    key.NewBinding(key.WithKeys("end"), key.WithHelp("end", "newest")),
		LaneLeft:  key.NewBinding(key.WithKeys("left", "h"), key.WithHelp("←/→", "lanes")),
		LaneRight: key.NewBinding(key.WithKeys("right", "l"), key.WithHelp("→", "lanes")),
		Select:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "select a")),
		Mark:      key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "mark b")),
		Clear:     key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear")),
		Quit:      key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

// HelpKeys are the keys of the help bar, most useful first (several keys
// share an entry).
func (k *KeyMap) HelpKeys() []key.Binding {
	h := func(keys, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys), key.WithHelp(keys, desc))
	}
	return []key.Binding{h("space/p", "follow"), h("↑↓", "time"), h("←→", "lanes"), h("enter", "a"),
		h("x", "b"), h("esc", "clear"), k.Quit, h("pgup/pgdn/home/end", "page")}
}
