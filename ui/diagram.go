package ui

// The diagram screen: this ATM's lifeline and the bank's, with the
// messages between them, as this ATM knows them: its own sends and
// receives from its clock, and the bank's receive, apply and reply
// timestamps from the replies.

import (
	"cmp"
	"slices"

	"atm/netproto/client"
	"atm/netproto/wire"
	"atm/ui/i18n"
	"atm/ui/spacetime"
	"atm/ui/watch"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// maxReplies bounds the replies remembered for the diagram.
const maxReplies = 2 * maxTimeline

// diagramMsg asks the root for the diagram screen.
type diagramMsg struct{}

func (diagramMsg) isIntent() {}

// diagramPage is the diagram screen, drawn across the whole body.
type diagramPage struct {
	base
	keys *watch.KeyMap
	d    *watch.Diagram
}

func newDiagramPage(c *common) *diagramPage {
	keys := watch.NewKeyMap(c.tr)
	return &diagramPage{base: newBase(c), keys: keys, d: watch.NewDiagram(watch.NewStyles(c.styles.IsDark), keys)}
}

func (p *diagramPage) Typing() bool { return false }
func (p *diagramPage) applyStyles() { p.d.SetStyles(watch.NewStyles(p.c.styles.IsDark)) }

func (p *diagramPage) Help() []key.Binding {
	h := p.keys.HelpKeys()
	for i, b := range h {
		if b.Help().Key == "esc" {
			h[i] = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", p.c.tr.T(i18n.DiagramBack)))
		}
	}
	return h
}

func (p *diagramPage) Update(msg tea.Msg) (intent, tea.Cmd) {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return nil, nil
	}
	if !p.d.HandleKey(k) && key.Matches(k, p.c.keys.Back) {
		return backMsg{}, nil
	}
	return nil, nil
}

// show rebuilds the diagram from what the ATM knows; with an event
// selected it waits, so that the selection stays what it was.
func (p *diagramPage) show(entries []wire.Entry, force bool) {
	if a, _ := p.d.Selected(); a >= 0 && !force {
		return
	}
	p.d.SetTrace(spacetime.Build(entries))
}

// noteReply remembers the bank's timestamps of a request, for the diagram.
func (m *Model) noteReply(msg tea.Msg) {
	var r client.Reply
	switch msg := msg.(type) {
	case loginResultMsg:
		r = msg.reply
	case opResultMsg:
		r = msg.reply
	case lookupResultMsg:
		r = msg.reply
	case statementResultMsg:
		r = msg.reply
	case resolveResultMsg:
		r = msg.reply
	default:
		return
	}
	if r.ID == "" {
		return
	}
	if m.replies == nil || len(m.replies) >= maxReplies {
		m.replies = map[string]client.Reply{}
	}
	m.replies[r.ID] = r
}

// diagramEntries are the log records of this ATM's exchanges with the
// bank as far as this ATM knows them: a request's record has its send and,
// from the reply, the bank's receive, apply and reply; each greeting and
// push is the bank's send. The ATM's receives are reported, as on the
// wire, with its next request (the last ones with the last request).
func diagramEntries(proc, bank string, evs []client.ClockEvent, replies map[string]client.Reply) []wire.Entry {
	if bank == "" {
		bank = "bank"
	}
	var out []wire.Entry
	var seen []wire.Seen
	last := -1 // the last request's entry
	for i, e := range evs {
		switch {
		case e.Dir == "recv" && e.Type == wire.TypeHello:
			out = append(out, wire.Entry{TS: e.Remote, Proc: bank, Kind: wire.KindConnect, Outcome: "ok", Client: proc})
			seen = append(seen, wire.Seen{TS: e.Remote, At: e.After})
		case e.Dir == "recv" && e.Type == wire.TypePush:
			out = append(out, wire.Entry{TS: e.Remote, Proc: bank, Kind: wire.KindPush, Outcome: "ok", Client: proc})
			seen = append(seen, wire.Seen{TS: e.Remote, At: e.After})
		case e.Dir == "send" && e.ReqID != "":
			r := wire.Entry{Proc: bank, Kind: e.Type, Client: proc, ClientTS: e.After, ReqID: e.ReqID, Seen: seen}
			seen = nil
			if ans, ok := answerOf(evs, i); ok {
				r.ReplyTS, r.Outcome = ans.Remote, "ok"
				if ans.Type == wire.TypeError {
					r.Outcome = "error"
				}
				seen = append(seen, wire.Seen{TS: ans.Remote, At: ans.After})
			}
			if rep, ok := replies[e.ReqID]; ok && rep.TS == r.ReplyTS {
				r.RecvTS, r.ApplyTS, r.TS = rep.ServerRecv, rep.ServerApply, rep.ServerApply
				r.Account, r.To, r.Amount, r.Balance = rep.Account, rep.To, rep.Amount, rep.Balance
			}
			out = append(out, r)
			last = len(out) - 1
		}
	}
	if len(seen) > 0 && last >= 0 {
		out[last].Seen = append(out[last].Seen, seen...)
	}
	// The bank's records come in its timestamp order; a request whose
	// answer did not come yet has no place on the bank's lifeline.
	placed := out[:0]
	for _, r := range out {
		if r.TS != 0 {
			placed = append(placed, r)
		}
	}
	slices.SortStableFunc(placed, func(a, b wire.Entry) int { return cmp.Compare(a.TS, b.TS) })
	return placed
}

// answerOf is the answer to the request sent by evs[i], if it came before
// the request was sent again.
func answerOf(evs []client.ClockEvent, i int) (client.ClockEvent, bool) {
	id := evs[i].ReqID
	for _, e := range evs[i+1:] {
		if e.ReqID != id {
			continue
		}
		if e.Dir == "send" {
			return client.ClockEvent{}, false
		}
		return e, true
	}
	return client.ClockEvent{}, false
}

// showDiagram brings the diagram up to date.
func (m *Model) showDiagram(force bool) {
	m.diagram.show(diagramEntries(m.cfg.ProcessID, m.clockPanel.server, m.clockPanel.events, m.replies), force)
}

// View draws the diagram screen across the body, its size.
func (p *diagramPage) View() string {
	s, tr := p.c.styles, p.c.tr
	box := s.Screen
	inner := p.width - box.GetHorizontalFrameSize()
	innerH := p.height - box.GetVerticalFrameSize()
	title := s.PageTitle.Render(tr.T(i18n.DiagramTitle)) + s.Dim.Render(tr.T(i18n.DiagramSubtitle))
	body := fitLines(title, inner, 1) + "\n" + p.d.View(inner, innerH-1)
	return box.Width(p.width).Render(fitLines(body, inner, innerH))
}
