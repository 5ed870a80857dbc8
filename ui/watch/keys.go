package watch

import (
	"atm/ui/i18n"

	"charm.land/bubbles/v2/key"
)

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

	tr *i18n.Printer // the language of the help
}

// DefaultKeyMap returns the diagram's keys, with English help.
func DefaultKeyMap() *KeyMap { return NewKeyMap(i18n.For(i18n.English)) }

// NewKeyMap returns the diagram's keys with their help in tr's language.
func NewKeyMap(tr *i18n.Printer) *KeyMap {
	h := func(k i18n.Key) string { return tr.T(k) }
	return &KeyMap{
		Follow:    key.NewBinding(key.WithKeys("space", "p"), key.WithHelp("space/p", h(i18n.WatchKeyPause))),
		Up:        key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", h(i18n.WatchKeyEarlier))),
		Down:      key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", h(i18n.WatchKeyLater))),
		PageUp:    key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", h(i18n.KeyPageUp))),
		PageDown:  key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", h(i18n.KeyPageDown))),
		Oldest:    key.NewBinding(key.WithKeys("home"), key.WithHelp("home", h(i18n.KeyOldest))),
		Newest:    key.NewBinding(key.WithKeys("end"), key.WithHelp("end", h(i18n.KeyNewest))),
		LaneLeft:  key.NewBinding(key.WithKeys("left", "h"), key.WithHelp("←/→", h(i18n.WatchKeyLanes))),
		LaneRight: key.NewBinding(key.WithKeys("right", "l"), key.WithHelp("→", h(i18n.WatchKeyLanes))),
		Select:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", h(i18n.WatchKeySelectA))),
		Mark:      key.NewBinding(key.WithKeys("x"), key.WithHelp("x", h(i18n.WatchKeyMarkB))),
		Clear:     key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", h(i18n.WatchKeyClear))),
		Quit:      key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", h(i18n.KeyQuit))),
		tr:        tr,
	}
}

// HelpKeys are the keys of the help bar, most useful first (several keys
// share an entry).
func (k *KeyMap) HelpKeys() []key.Binding {
	h := func(keys string, desc i18n.Key) key.Binding {
		return key.NewBinding(key.WithKeys(keys), key.WithHelp(keys, k.tr.T(desc)))
	}
	return []key.Binding{h("space/p", i18n.WatchKeyFollow), h("↑↓", i18n.WatchKeyTime), h("←→", i18n.WatchKeyLanes),
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "a")),
		key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "b")),
		h("esc", i18n.WatchKeyClear), k.Quit, h("pgup/pgdn/home/end", i18n.WatchKeyPage)}
}
