package spacetime

import (
	"fmt"
	"sort"

	"atm/bank/money"
	"atm/netproto/wire"
)

// A simulated bank and its clients, logging what the bank would log, with
// the protocol's Lamport arithmetic: a send ticks and carries the clock, a
// receive sets it to max(clock, ts)+1, the bank's apply ticks.

type simReq struct {
	kind, id, to string
	amount       money.Cents
	ts           uint64
	seen         []wire.Seen
	recvTS       uint64
	entry        int // index in sim.entries once applied
}

type simMsg struct {
	ts   uint64
	what string
}

type simClient struct {
	proc      string
	addr      string
	account   string
	clocked   bool
	clock     uint64
	n         int
	outbox    []*simReq // sent, not yet received by the bank
	pending   *simReq   // received by the bank, not yet applied
	replyDue  *simReq   // applied, reply not yet sent
	inbox     []simMsg  // sent by the bank, not yet received
	reports   []wire.Seen
	loggedIn  bool // as the client believes (requests sent)
	bankLogin bool // as the bank knows (requests applied)
}

// truth is what really happened, for the checks.
type truth struct {
	reported   map[[3]string]bool // {client, At, bank TS} of every reported receive
	requests   map[[3]string]bool // {client, ClientTS, RecvTS} of every request
	unreported int                // bank messages whose receive was not reported
	bankEvents int
	clientEv   map[string]int // logged events of each client: sends and reported receives
}

type sim struct {
	clock   uint64
	entries []wire.Entry
	clients []*simClient
	truth   truth
}

func newSim(n int, clocked []bool) *sim {
	s := &sim{truth: truth{reported: map[[3]string]bool{}, requests: map[[3]string]bool{}, clientEv: map[string]int{}}}
	s.local("server_start", "")
	for i := 0; i < n; i++ {
		c := &simClient{
			addr:    fmt.Sprintf("10.0.0.%d:40%02d", i+1, i),
			account: fmt.Sprintf("10%d", i),
			clocked: clocked[i],
		}
		c.proc = fmt.Sprintf("atm-%c%d", 'a'+i, i)
		if !c.clocked && i%2 == 1 {
			c.proc = c.addr // a client that announces no process id
		}
		s.clients = append(s.clients, c)
		s.send(c, "hello", wire.Entry{Kind: wire.KindConnect, Client: c.addr, Detail: "connection from " + c.addr})
	}
	return s
}

func (s *sim) tick() uint64 { s.clock++; return s.clock }

func (s *sim) local(kind, account string) {
	s.truth.bankEvents++
	s.entries = append(s.entries, wire.Entry{TS: s.tick(), Proc: "bank", Kind: kind, Outcome: "ok", Account: account})
}

// send is a message of the bank to c recorded as its own entry.
func (s *sim) send(c *simClient, what string, e wire.Entry) {
	s.truth.bankEvents++
	e.TS = s.tick()
	e.Proc = "bank"
	e.Outcome = "ok"
	s.entries = append(s.entries, e)
	c.inbox = append(c.inbox, simMsg{ts: e.TS, what: what})
}

// request: c sends its next request.
func (s *sim) request(c *simClient, pick int, others []*simClient) {
	r := &simReq{entry: -1}
	c.n++
	r.id = fmt.Sprintf("%s-%d", c.proc, c.n)
	switch {
	case !c.loggedIn:
		r.kind = wire.KindLogin
		c.loggedIn = true
	default:
		switch pick % 6 {
		case 0:
			r.kind = wire.KindDeposit
			r.amount = money.Cents(100 * (pick + 1))
		case 1:
			r.kind = wire.KindWithdraw
			r.amount = 100
		case 2, 3:
			r.kind = wire.KindTransfer
			r.amount = 50
			r.to = others[pick%len(others)].account
		case 4:
			r.kind = wire.KindBalance
		case 5:
			r.kind = wire.KindLogout
			c.loggedIn = false
		}
	}
	if c.clocked {
		c.clock++
		r.ts = c.clock
		r.seen = c.reports
		c.reports = nil
	}
	s.truth.clientEv[c.proc]++
	c.outbox = append(c.outbox, r)
}

// receive: the bank reads c's next request.
func (s *sim) receive(c *simClient) bool {
	if len(c.outbox) == 0 || c.pending != nil || c.replyDue != nil {
		return false
	}
	r := c.outbox[0]
	c.outbox = c.outbox[1:]
	s.clock = max(s.clock, r.ts) + 1
	r.recvTS = s.clock
	s.truth.bankEvents++
	s.truth.requests[[3]string{c.proc, fmt.Sprint(r.ts), fmt.Sprint(r.recvTS)}] = true
	c.pending = r
	return true
}

// apply: the bank applies c's received request; the reply follows at
// once or later (deferReply).
func (s *sim) apply(c *simClient, deferReply bool) bool {
	r := c.pending
	if r == nil {
		return false
	}
	c.pending = nil
	e := wire.Entry{TS: s.tick(), Proc: "bank", Kind: r.kind, Outcome: "ok", To: r.to, Amount: r.amount,
		ReqID: r.id, Client: c.proc, ClientTS: r.ts, RecvTS: r.recvTS, Seen: r.seen}
	e.ApplyTS = e.TS
	s.truth.bankEvents += 2 // apply, reply
	switch r.kind {
	case wire.KindLogin:
		c.bankLogin = true
		e.Account = c.account
	case wire.KindLogout:
		c.bankLogin = false
		e.Account = c.account
	default:
		e.Account = c.account
	}
	r.entry = len(s.entries)
	s.entries = append(s.entries, e)
	if r.kind == wire.KindTransfer {
		for _, d := range s.clients {
			if d != c && d.bankLogin && d.account == r.to {
				s.send(d, "push", wire.Entry{Kind: wire.KindPush, Client: d.proc, Account: d.account, To: c.account, Amount: r.amount})
			}
		}
	}
	c.replyDue = r
	if !deferReply {
		s.reply(c)
	}
	return true
}

func (s *sim) reply(c *simClient) bool {
	r := c.replyDue
	if r == nil {
		return false
	}
	c.replyDue = nil
	s.entries[r.entry].ReplyTS = s.tick()
	c.inbox = append(c.inbox, simMsg{ts: s.clock, what: "reply"})
	return true
}

// deliver: c receives the bank's next message, and maybe reports it.
func (s *sim) deliver(c *simClient, report bool) bool {
	if len(c.inbox) == 0 {
		return false
	}
	m := c.inbox[0]
	c.inbox = c.inbox[1:]
	if !c.clocked {
		s.truth.unreported++
		return true
	}
	c.clock = max(c.clock, m.ts) + 1
	if report && len(c.reports) < wire.MaxSeen {
		c.reports = append(c.reports, wire.Seen{TS: m.ts, At: c.clock})
		s.truth.reported[[3]string{c.proc, fmt.Sprint(c.clock), fmt.Sprint(m.ts)}] = true
		s.truth.clientEv[c.proc]++
	} else {
		s.truth.unreported++
	}
	return true
}

// finish drains every request and message, then shuts down with a bye to
// each client, and returns the log in TS order. Receives reported in
// requests never sent stay unreported.
func (s *sim) finish() []wire.Entry {
	for busy := true; busy; {
		busy = false
		for _, c := range s.clients {
			for s.reply(c) || s.receive(c) || s.apply(c, false) {
				busy = true
			}
		}
	}
	for _, c := range s.clients {
		s.send(c, "bye", wire.Entry{Kind: wire.KindDisconnect, Client: c.proc, Account: c.account,
			Detail: "the bank is shutting down; your ATM can reconnect when it is back"})
	}
	for _, c := range s.clients {
		for len(c.inbox) > 0 {
			s.deliver(c, false)
		}
		// Reports never sent: those receives are unknown to the log.
		for _, r := range c.reports {
			delete(s.truth.reported, [3]string{c.proc, fmt.Sprint(r.At), fmt.Sprint(r.TS)})
			s.truth.unreported++
			s.truth.clientEv[c.proc]--
		}
		c.reports = nil
	}
	sort.SliceStable(s.entries, func(i, j int) bool { return s.entries[i].TS < s.entries[j].TS })
	return s.entries
}
