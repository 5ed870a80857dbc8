package sshatm

import tea "charm.land/bubbletea/v2"

// SetWrapModel makes s wrap the model of each session's ATM with wrap,
// which may panic (a fault in the server's handling of the session) or
// return a model that panics (a fault in the ATM). Call it before Serve.
func SetWrapModel(s *Server, wrap func(proc string, m tea.Model) tea.Model) {
	s.wrapModel = wrap
}
