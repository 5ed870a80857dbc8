package ui

import (
	"strings"
	"testing"

	"atm/netproto/client"
)

// The messages the client sent and received by itself after a reconnect,
// and the ATM's own logout, are in the timeline with their rule, labelled
// as automatic; the person's own requests have no label.
func TestTimelineLabelsAutomaticMessages(t *testing.T) {
	t.Parallel()
	eachLayout(t, func(t *testing.T, m *Model) {
		connected(m)
		send(m, clockEventsMsg{
			{Dir: "send", Type: "balance", Op: "balance", ReqID: "a-1", Before: 4, After: 5, Peer: "bank"},
			{Dir: "recv", Type: "hello", Before: 5, After: 31, Remote: 30, Peer: "bank", Reason: client.ReasonReconnect},
			{Dir: "send", Type: "login", Op: "login", ReqID: "a-2", Before: 31, After: 32, Peer: "bank", Reason: client.ReasonRestore},
			{Dir: "recv", Type: "reply", Op: "login", ReqID: "a-2", Before: 32, After: 36, Remote: 35, Peer: "bank", Reason: client.ReasonRestore},
			{Dir: "send", Type: "logout", Op: "logout", ReqID: "a-3", Before: 36, After: 37, Peer: "bank", Reason: reasonATMLogout},
		})
		out := screen(t, m)
		mustContain(t, out, "↑ balance", "4+1 = 5", "↓ hello", "max(5,30)+1 = 31", "↑ login", "31+1 = 32",
			"↓ login ✓", "max(32,35)+1 = 36", "↑ logout", "36+1 = 37",
			"reconnected · session restored", "reconnected · ATM logged out")
		if n := countLines(out, "reconnected · session restored"); n != 2 {
			t.Errorf("%d lines say the session was restored, want 2 (the login and its answer):\n%s", n, out)
		}
		if n := countLines(out, "reconnected"); n != 4 {
			t.Errorf("%d lines say reconnected, want 4 (hello, login, its answer, logout):\n%s", n, out)
		}
	})
}

func countLines(out, s string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}
