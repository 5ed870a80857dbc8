package ui

import (
	"context"

	tea "charm.land/bubbletea/v2"
)

// Run runs the ATM full screen on the terminal until the person quits, then
// logs out, disconnects and stops the embedded server if this ATM started
// one.
func Run(ctx context.Context, cfg Config, opts ...tea.ProgramOption) error {
	m := New(cfg)
	opts = append([]tea.ProgramOption{tea.WithContext(ctx)}, opts...)
	_, err := tea.NewProgram(m, opts...).Run()
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	return err
}
