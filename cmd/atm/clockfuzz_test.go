package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"atm/netproto/server"
	"atm/netproto/wire"

	"atm/bank"
	"atm/bank/outcome"
)

// What PROTOCOL.md and the server promise about timestamps, restated here as
// an outside client sees them.
const (
	fzMaxTS     = uint64(1)<<53 - 1 // the largest ts a message may carry
	fzJumpOut   = uint64(1) << 20   // how far above the clock a logged-out connection may stamp
	fzJumpIn    = uint64(1) << 32   // the same for a logged-in session
	fzLease     = uint64(1) << 14   // the most a crash may move the clock past what it let out
	fzFarAbove  = uint64(1) << 42   // a ts this far above anything observable is refused for sure
	fzMaxLines  = 1000              // per cycle; fzFarAbove relies on fewer jumps than 2^10 in a cycle
	fzReadGuard = 60 * time.Second  // a read that takes this long means the server hangs
)

// fzWire is every field of a server message the test reads.
type fzWire struct {
	Type      string  `json:"type"`
	ID        string  `json:"id"`
	Op        string  `json:"op"`
	Proc      string  `json:"proc"`
	TS        *uint64 `json:"ts"`
	Code      string  `json:"code"`
	RecvTS    uint64  `json:"recv_ts"`
	ApplyTS   uint64  `json:"apply_ts"`
	Account   string  `json:"account"`
	From      string  `json:"from"`
	Kind      string  `json:"kind"`
	To        string  `json:"to"`
	Amount    int64   `json:"amount"`
	Balance   *int64  `json:"balance"`
	Duplicate bool    `json:"duplicate"`

	raw string // the line as received
}

// fzReq is one line the test wrote and what it can predict of its answer.
type fzReq struct {
	line   string
	id     string // the id the answer must echo ("" for none)
	op     string // the op the answer must name ("" to not check)
	money  bool   // deposit, withdraw or transfer
	amount int64  // for a well-formed money request
	to     string
	hasTS  bool   // the line carries a whole number ts in 0..2^64-1
	ts     uint64 // that number
	code   string // the error code the answer must carry, when certain
	fault  bool   // refused before the ts is judged (malformed, bad_request)
	low    uint64 // a lower bound of the server clock when it reads the line
	far    bool   // ts is so far above anything observable that it must be refused
}

// mayTake reports whether the server may observe the line's ts.
func (r fzReq) mayTake() bool { return r.hasTS && r.ts <= fzMaxTS && !r.far }

// fzMoney is a money request the ledger answered (its answer has apply_ts).
type fzMoney struct {
	id, kind, account, to, code string
	amount, balance             int64
	hasBalance                  bool
	clientTS, recv, apply, ts   uint64
}

// fzPush is a push a connection received.
type fzPush struct {
	account, from, to, kind string
	amount                  int64
	applyTS, ts             uint64
}

// fzWorld is what the test knows across connections and restarts.
type fzWorld struct {
	t  *testing.T
	mu sync.Mutex
	// maxSeen is the highest ts any connection received: a lower bound of
	// the server's clock from then on.
	maxSeen uint64
	// maxTaken is the highest ts the server observed, or may have observed
	// (answered without saying, or in flight at a kill); inFlight are the
	// ts of the lines written and not answered yet that it may observe.
	// With maxSeen and ticks they bound the clock from above.
	maxTaken uint64
	inFlight map[uint64]int
	// ticks bounds the server's own clock steps: every line written,
	// connection, push and restart adds to it.
	ticks  uint64
	seenTS map[uint64]string // every ts received, and where: none may repeat

	ledger   []fzMoney           // money answers with apply_ts: in the log once
	notInLog map[string]string   // request ids that must not be in the log, and why
	pushes   []fzPush            // to be matched with transfers in the log
	figures  map[string]int      // counters for the FIGURES line
	lastLine map[string][]string // per connection, its last lines, for failure reports
}

func (w *fzWorld) count(name string, n int) {
	w.mu.Lock()
	w.figures[name] += n
	w.mu.Unlock()
}

// see records a ts received on connection who.
func (w *fzWorld) see(ts uint64, who, what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if prev, dup := w.seenTS[ts]; dup {
		w.t.Errorf("ts %d received twice: %s, and %s on %s", ts, prev, what, who)
	}
	w.seenTS[ts] = who + " " + what
	w.maxSeen = max(w.maxSeen, ts)
	w.ticks += 4 // a push or answer may come with ticks the test never sees
}

// bounds returns a lower bound of the server's clock now, and the bound
// above which no clock value can be.
func (w *fzWorld) bounds() (low, high uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	high = max(w.maxSeen, w.maxTaken)
	for ts := range w.inFlight {
		high = max(high, ts)
	}
	return w.maxSeen, high + w.ticks
}

// sent notes a line's ts the server may observe; answered takes it back
// once answered, and took keeps it if the server observed it.
func (w *fzWorld) sent(ts uint64) {
	w.mu.Lock()
	w.inFlight[ts]++
	w.mu.Unlock()
}

func (w *fzWorld) answered(ts uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.inFlight[ts]--; w.inFlight[ts] <= 0 {
		delete(w.inFlight, ts)
	}
}

func (w *fzWorld) took(ts uint64) {
	w.mu.Lock()
	w.maxTaken = max(w.maxTaken, ts)
	w.mu.Unlock()
}

// stopped counts what was in flight at a kill as observed.
func (w *fzWorld) stopped() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ts := range w.inFlight {
		w.maxTaken = max(w.maxTaken, ts)
	}
	clear(w.inFlight)
}

// TestHostileTimestampsAndCrashes drives random timestamps (valid, at the
// edges of the allowed jumps, out of range, malformed) in random pipelined
// bursts on several raw connections at once, with pushes between sessions,
// and kills the server with SIGKILL at random moments, restarting it on the
// same file. From the outside it checks: timestamps rise strictly along each
// connection and no ts is ever sent twice; refused timestamps get
// invalid_timestamp (or bad_request) and are not observed; accepted ones are
// observed (the answer, and its recv_ts, are above the request's ts); the
// jump limits hold exactly on a quiet server; the restarted server greets
// above everything it ever sent. Offline, the event log's timestamps rise
// strictly, every money request the ledger answered is in it once with the
// answer's outcome and timestamps, no refused one is, every push matches its
// transfer, and atm verify passes.
func TestHostileTimestampsAndCrashes(t *testing.T) {
	t.Parallel()
	cycles := 4
	if testing.Short() {
		cycles = 2
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ATM_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("random seed %d (replay with ATM_TEST_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	if fzMaxTS != wire.MaxTS || fzJumpOut != server.MaxJumpLoggedOut || fzJumpIn != server.MaxJump {
		t.Fatalf("the limits of PROTOCOL.md changed: MaxTS %d, jumps %d and %d", wire.MaxTS, server.MaxJumpLoggedOut, server.MaxJump)
	}
	bin := buildATM(t)
	db := filepath.Join(t.TempDir(), "bank.db")
	w := &fzWorld{t: t, seenTS: map[uint64]string{}, inFlight: map[uint64]int{}, notInLog: map[string]string{},
		figures: map[string]int{}, lastLine: map[string][]string{}}

	addr := "127.0.0.1:0" // then the same port for every restart
	for cycle := 0; cycle <= cycles; cycle++ {
		w.mu.Lock()
		w.ticks += 2*fzLease + 64 // a crash may leave the clock up to a lease ahead
		w.mu.Unlock()
		srv := startServe(t, bin, db, addr, cycle)
		addr = srv.addr
		fzQuietProbe(t, w, srv.addr, cycle)
		if cycle == 0 {
			fzPushProbe(t, w, srv.addr)
		}
		if t.Failed() {
			return
		}
		last := cycle == cycles
		fzChaos(t, w, rng, srv, cycle, last)
		if t.Failed() {
			return
		}
	}

	fzCheckLog(t, w, bin, db)
	w.mu.Lock()
	defer w.mu.Unlock()
	f := w.figures
	t.Logf("FIGURES %s: seed=%d cycles=%d sigkills=%d connections=%d lines=%d answers=%d refused_timestamps=%d "+
		"bad_request=%d malformed=%d accepted_jumps=%d ledger_money_answers=%d pushes=%d in_flight_at_kill=%d "+
		"unanswered_at_sigterm=%d byes=%d distinct_ts=%d",
		t.Name(), seed, cycles, f["kills"], f["conns"], f["lines"], f["answers"], f["invalid_timestamp"],
		f["bad_request"], f["malformed"], f["accepted_jumps"], len(w.ledger), len(w.pushes), f["in_flight_at_kill"],
		f["unanswered_at_sigterm"], f["byes"], len(w.seenTS))
}

// fzRaw is a raw connection: lines written by hand, lines read one by one.
type fzRaw struct {
	t    *testing.T
	name string
	nc   net.Conn
	br   *bufio.Reader
}

func fzDial(t *testing.T, addr, name string) (*fzRaw, fzWire) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, addr, err)
	}
	c := &fzRaw{t: t, name: name, nc: nc, br: bufio.NewReader(nc)}
	hello, err := c.read()
	if err != nil || hello.Type != "hello" || hello.TS == nil {
		t.Fatalf("%s: greeting %+v, %v", name, hello, err)
	}
	return c, hello
}

func (c *fzRaw) read() (fzWire, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(fzReadGuard))
	line, err := c.br.ReadBytes('\n')
	if err != nil {
		return fzWire{}, err
	}
	m := fzWire{raw: string(bytes.TrimSpace(line))}
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("%s: the server sent %q: %v", c.name, line, err)
	}
	return m, nil
}

// ask writes one line and reads one message.
func (c *fzRaw) ask(line string) fzWire {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(line + "\n")); err != nil {
		c.t.Fatalf("%s: write %s: %v", c.name, line, err)
	}
	m, err := c.read()
	if err != nil || m.TS == nil {
		c.t.Fatalf("%s: answer to %s: %+v, %v", c.name, line, m, err)
	}
	return m
}

// fzQuietProbe checks the jump limits to the unit on a server nobody else
// talks to: right after the greeting its clock is the greeting's ts, and a
// refusal or an error of its own is exactly a receive and a send.
func fzQuietProbe(t *testing.T, w *fzWorld, addr string, cycle int) {
	name := fmt.Sprintf("c%d-quiet", cycle)
	c, hello := fzDial(t, addr, name)
	defer c.nc.Close()
	low, _ := w.bounds()
	h := *hello.TS
	if h <= low {
		t.Fatalf("cycle %d: the server greets at ts %d, not above %d, the highest ts it sent before", cycle, h, low)
	}
	w.see(h, name, "hello")
	proc := "fz-" + name
	n := 0
	step := func(ts string, wantCode string, wantTS func(got fzWire) string) fzWire {
		t.Helper()
		n++
		line := fmt.Sprintf(`{"type":"balance","id":"%s-%d","proc":"%s","ts":%s}`, proc, n, proc, ts)
		m := c.ask(line)
		w.see(*m.TS, name, line)
		w.count("lines", 1)
		w.count("answers", 1)
		if m.Code != wantCode || m.ID != fmt.Sprintf("%s-%d", proc, n) {
			t.Fatalf("%s: %s answered %s, want code %q", name, line, m.raw, wantCode)
		}
		if msg := wantTS(m); msg != "" {
			t.Fatalf("%s: %s answered ts %d: %s", name, line, *m.TS, msg)
		}
		return m
	}
	exact := func(want uint64) func(fzWire) string {
		return func(m fzWire) string {
			if *m.TS != want {
				return fmt.Sprintf("want %d", want)
			}
			return ""
		}
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }

	// Logged out: one above the jump is refused and not observed; the jump
	// itself is taken.
	clock := h
	step(u(clock+fzJumpOut+1), "invalid_timestamp", exact(clock+2))
	clock += 2
	step(u(clock+fzJumpOut), "not_logged_in", exact(clock+fzJumpOut+2))
	clock += fzJumpOut + 2
	// Out of range or not a whole number: refused, nothing observed.
	step(u(fzMaxTS), "invalid_timestamp", exact(clock+2))
	clock += 2
	step(u(fzMaxTS+1), "invalid_timestamp", exact(clock+2))
	clock += 2
	step("18446744073709551615", "invalid_timestamp", exact(clock+2))
	clock += 2
	step("18446744073709551616", "bad_request", exact(clock+2))
	clock += 2
	step("-1", "bad_request", exact(clock+2))
	clock += 2
	step("1.5", "bad_request", exact(clock+2))
	clock += 2
	step(`"7"`, "bad_request", exact(clock+2))
	clock += 2
	step("0", "not_logged_in", exact(clock+2))
	clock += 2

	// Log in, then the same edges with a session's limit.
	n++
	acct := []string{"123", "456", "789"}[cycle%3]
	line := fmt.Sprintf(`{"type":"login","id":"%s-%d","proc":"%s","ts":%d,"account":"%s","pin":"1234"}`, proc, n, proc, clock+1, acct)
	m := c.ask(line)
	w.see(*m.TS, name, line)
	w.count("lines", 1)
	if m.Type != "reply" || m.RecvTS != clock+2 || m.ApplyTS <= m.RecvTS || *m.TS <= m.ApplyTS {
		t.Fatalf("%s: %s answered %s, want a reply with recv_ts %d", name, line, m.raw, clock+2)
	}
	clock = *m.TS
	step(u(clock+fzJumpIn+1), "invalid_timestamp", exact(clock+2))
	clock += 2
	m = step(u(clock+fzJumpIn), "", func(m fzWire) string {
		if m.RecvTS != clock+fzJumpIn+1 || *m.TS <= m.RecvTS {
			return fmt.Sprintf("with recv_ts %d; want recv_ts %d below it", m.RecvTS, clock+fzJumpIn+1)
		}
		return ""
	})
	clock = *m.TS
	step(u(clock+fzJumpIn+1), "invalid_timestamp", exact(clock+2))
	clock += 2
	step("1", "", func(m fzWire) string {
		if m.RecvTS != clock+1 {
			return fmt.Sprintf("with recv_ts %d; want %d (a ts below the clock observes nothing new)", m.RecvTS, clock+1)
		}
		return ""
	})
	w.count("invalid_timestamp", 6)
	w.count("bad_request", 4)
	w.count("accepted_jumps", 2)
	w.count("conns", 1)
}

// fzPushProbe makes sure the run holds a push, whenever the chaos cycles
// stop: on the quiet server, a session on 123 transfers 1 cent to 456,
// where another session is, which is pushed the transfer. The answer and
// the push are checked offline with the chaos's.
func fzPushProbe(t *testing.T, w *fzWorld, addr string) {
	w.mu.Lock()
	w.ticks += 32
	w.mu.Unlock()
	var clock uint64
	type side struct {
		c    *fzRaw
		proc string
	}
	login := func(name, acct string) side {
		c, hello := fzDial(t, addr, name)
		w.see(*hello.TS, name, "hello")
		clock = max(clock, *hello.TS) + 1
		proc := "fz-" + name
		line := fmt.Sprintf(`{"type":"login","id":"%s-1","proc":"%s","ts":%d,"account":"%s","pin":"1234"}`, proc, proc, clock, acct)
		m := c.ask(line)
		w.see(*m.TS, name, line)
		if m.Type != "reply" {
			t.Fatalf("%s: %s answered %s", name, line, m.raw)
		}
		clock = max(clock, *m.TS) + 1
		return side{c, proc}
	}
	payer, payee := login("c0-push-payer", "123"), login("c0-push-payee", "456")
	defer payer.c.nc.Close()
	defer payee.c.nc.Close()
	clock++
	id := payer.proc + "-2"
	line := fmt.Sprintf(`{"type":"transfer","id":"%s","proc":"%s","ts":%d,"to":"456","amount":1}`, id, payer.proc, clock)
	m := payer.c.ask(line)
	w.see(*m.TS, payer.proc, line)
	if m.Type != "reply" || m.ApplyTS == 0 {
		t.Fatalf("%s: %s answered %s", payer.proc, line, m.raw)
	}
	p, err := payee.c.read()
	if err != nil || p.Type != "push" || p.TS == nil || p.ApplyTS != m.ApplyTS {
		t.Fatalf("%s: after the transfer, %+v (%v), want its push", payee.proc, p, err)
	}
	w.see(*p.TS, payee.proc, "push")
	w.mu.Lock()
	w.ledger = append(w.ledger, fzMoney{id: id, kind: "transfer", account: "123", to: "456", code: "ok",
		amount: 1, balance: deref(m.Balance), hasBalance: m.Balance != nil,
		clientTS: clock, recv: m.RecvTS, apply: m.ApplyTS, ts: *m.TS})
	w.pushes = append(w.pushes, fzPush{account: p.Account, from: p.From, to: p.To, kind: p.Kind,
		amount: p.Amount, applyTS: p.ApplyTS, ts: *p.TS})
	w.mu.Unlock()
	w.count("lines", 3)
	w.count("answers", 3)
	w.count("conns", 2)
	w.count("pushes_received", 1)
}

// fzConn is one chaos connection: a writer that pipelines random bursts and
// a reader that checks every message as it comes.
type fzConn struct {
	w       *fzWorld
	raw     *fzRaw
	name    string
	proc    string
	account string // the account it logs in to; "" for a connection that never does
	reqs    chan fzReq
	slots   chan struct{} // one per request written and not yet answered
	dead    chan struct{} // closed when the reader stops
	lines   int           // to write
	// reader's state
	lastTS   uint64
	lastAns  uint64 // ts of the last answer (not push)
	loggedIn string
	gotBye   bool
	answered int
}

const fzWindow = 48 // requests in flight per connection at most

// fzChaos runs one cycle: random connections and bursts, then a SIGKILL (or,
// on the last cycle, a SIGTERM) at a random moment with requests in flight.
func fzChaos(t *testing.T, w *fzWorld, rng *rand.Rand, srv *child, cycle int, last bool) {
	nconns := 3 + rng.IntN(3)
	var conns []*fzConn
	total := 0
	for i := range nconns {
		name := fmt.Sprintf("c%d-%d", cycle, i)
		raw, hello := fzDial(t, srv.addr, name)
		w.see(*hello.TS, name, "hello")
		c := &fzConn{w: w, raw: raw, name: name, proc: "fz-" + name,
			reqs: make(chan fzReq, fzMaxLines), slots: make(chan struct{}, fzWindow), dead: make(chan struct{}),
			lines: 25 + rng.IntN(60), lastTS: *hello.TS, lastAns: *hello.TS}
		if testing.Short() {
			c.lines = 15 + rng.IntN(25)
		}
		if i < 3 || rng.IntN(2) == 0 {
			c.account = []string{"123", "456", "789"}[(i+cycle)%3]
		}
		total += c.lines
		conns = append(conns, c)
	}
	if total > fzMaxLines {
		t.Fatalf("%d lines in a cycle; fzFarAbove assumes at most %d", total, fzMaxLines)
	}
	w.count("conns", nconns)
	w.mu.Lock()
	w.ticks += uint64(8 * nconns)
	w.mu.Unlock()

	// The stop comes once a random number of answers has arrived.
	trigger := 1 + rng.IntN(total*9/10)
	answers := make(chan struct{}, total)
	var readers, writers sync.WaitGroup
	stopped := make(chan struct{})
	for _, c := range conns {
		seed := rng.Uint64()
		readers.Add(1)
		go func() {
			defer readers.Done()
			c.readLoop(answers, stopped, last)
		}()
		writers.Add(1)
		go func() {
			defer writers.Done()
			c.writeLoop(rand.New(rand.NewPCG(seed, uint64(cycle))))
		}()
	}
	allRead := make(chan struct{})
	go func() { readers.Wait(); close(allRead) }()
	for n := 0; n < trigger; n++ {
		select {
		case <-answers:
		case <-allRead:
			n = trigger // every reader stopped: the server closed them all; the check below says why
		}
	}
	close(stopped)
	w.stopped() // what is in flight may be observed before the stop
	sig := syscall.SIGKILL
	if last {
		sig = syscall.SIGTERM
	}
	if err := srv.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	if last && srv.err != nil {
		b, _ := os.ReadFile(srv.out)
		t.Errorf("atm serve on SIGTERM: %v\n%s", srv.err, lastLines(b, 20))
	}
	if !last {
		w.count("kills", 1)
	}
	readers.Wait()
	for _, c := range conns {
		c.raw.nc.Close()
	}
	writers.Wait()
	for _, c := range conns {
		// What was written and not answered: in flight at the kill, or, at
		// a SIGTERM, never processed.
		close(c.reqs)
		for r := range c.reqs {
			if last {
				w.count("unanswered_at_sigterm", 1)
				if r.money && r.id != "" {
					w.mu.Lock()
					w.notInLog[r.id] = "unanswered before the bye"
					w.mu.Unlock()
				}
			} else {
				w.count("in_flight_at_kill", 1)
			}
		}
		if last && !c.gotBye {
			t.Errorf("%s: no bye on SIGTERM (last lines: %s)", c.name, w.recent(c.name))
		}
	}
	t.Logf("cycle %d: %d connections, stopped with %v after %d answers", cycle, nconns, sig, trigger)
}

// writeLoop writes the connection's lines in random bursts, each burst in one
// or two writes (a line may be cut between them), sometimes waiting for every
// answer before the next burst.
func (c *fzConn) writeLoop(r *rand.Rand) {
	n := 0
	loggedIn := false
	for n < c.lines {
		burst := min(1+r.IntN(8), c.lines-n)
		var buf bytes.Buffer
		for range burst {
			select {
			case c.slots <- struct{}{}:
			case <-c.dead:
				return
			}
			n++
			req := c.nextLine(r, n, &loggedIn)
			c.w.mu.Lock()
			c.w.figures["lines"]++
			c.w.ticks += 8
			c.w.mu.Unlock()
			if req.mayTake() {
				c.w.sent(req.ts)
			}
			c.reqs <- req
			buf.WriteString(req.line)
			buf.WriteByte('\n')
		}
		b := buf.Bytes()
		cut := r.IntN(len(b) + 1)
		if _, err := c.raw.nc.Write(b[:cut]); err != nil {
			return
		}
		if _, err := c.raw.nc.Write(b[cut:]); err != nil {
			return
		}
		if r.IntN(3) == 0 { // wait for every answer
			for range fzWindow {
				select {
				case c.slots <- struct{}{}:
				case <-c.dead:
					return
				}
			}
			for range fzWindow {
				<-c.slots
			}
		}
	}
}

// nextLine draws the n-th line of the connection.
func (c *fzConn) nextLine(r *rand.Rand, n int, loggedIn *bool) fzReq {
	id := fmt.Sprintf("%s-%d", c.proc, n)
	low, high := c.w.bounds()
	req := fzReq{id: id, low: low}

	// The timestamp.
	tsText := ""
	setTS := func(v uint64) { req.hasTS, req.ts, tsText = true, v, strconv.FormatUint(v, 10) }
	switch k := r.IntN(24); {
	case k < 2: // none
	case k < 10:
		setTS(max(low, 3) - 3 + uint64(r.IntN(7)))
	case k < 12:
		setTS(uint64(r.IntN(2)))
	case k == 12:
		setTS(fzMaxTS)
	case k == 13:
		setTS([]uint64{fzMaxTS + 1, 1<<63 - 1, 1 << 63, 1<<64 - 1}[r.IntN(4)])
		req.code = "invalid_timestamp"
	case k < 16:
		setTS(low + fzJumpOut - 1 + uint64(r.IntN(3)))
	case k < 18:
		setTS(low + fzJumpIn - 1 + uint64(r.IntN(3)))
	case k == 18:
		setTS(r.Uint64N(fzMaxTS + 1))
	case k == 19:
		setTS(r.Uint64N(low + 1))
	case k == 20:
		setTS(low + uint64(r.IntN(1<<16)))
	default: // not a whole number of 64 bits
		tsText = []string{"18446744073709551616", "99999999999999999999999", "-1", "1.5", "1e3", `"12"`, "true"}[r.IntN(7)]
		req.code, req.fault = "bad_request", true
	}
	if req.hasTS && req.ts <= fzMaxTS && req.ts > high+fzFarAbove {
		req.far = true
	}
	field := func(k, v string) string { return `,"` + k + `":` + v }
	head := func(typ string) string {
		s := `{"type":"` + typ + `","id":"` + id + `","proc":"` + c.proc + `"`
		if tsText != "" {
			s += field("ts", tsText)
		}
		return s
	}
	q := strconv.Quote

	// The request.
	if c.account != "" && !*loggedIn {
		// A login carries a plain ts, so that the session mostly exists.
		*loggedIn = true
		req.code, req.fault, req.far = "", false, false
		setTS(low + 1)
		req.op = "login"
		req.line = head("login") + field("account", q(c.account)) + field("pin", q("1234")) + "}"
		return req
	}
	others := func() string {
		for {
			a := []string{"123", "456", "789"}[r.IntN(3)]
			if a != c.account {
				return a
			}
		}
	}
	amount := func() string {
		req.amount = 1 + r.Int64N(50_000)
		switch r.IntN(16) {
		case 0:
			req.amount = 0
		case 1:
			req.amount = -5
		case 2:
			req.amount = 20_000_000 // above the per-operation limit
		case 3:
			req.amount = 0
			return "1.5" // not a whole number of cents
		case 4:
			req.code, req.fault, req.amount = "bad_request", true, 0
			return `"100"`
		}
		return strconv.FormatInt(req.amount, 10)
	}
	switch k := r.IntN(22); {
	case k < 3:
		req.op = "balance"
		req.line = head("balance") + "}"
	case k < 7:
		req.op, req.money = "deposit", true
		req.line = head("deposit") + field("amount", amount()) + "}"
	case k < 10:
		req.op, req.money = "withdraw", true
		req.line = head("withdraw") + field("amount", amount()) + "}"
	case k < 15:
		req.op, req.money = "transfer", true
		req.to = others()
		if r.IntN(12) == 0 {
			req.to = []string{c.account, "999"}[r.IntN(2)]
		}
		if req.to == "" {
			req.to = "123"
		}
		req.line = head("transfer") + field("to", q(req.to)) + field("amount", amount()) + "}"
	case k < 17:
		req.op = "lookup"
		req.line = head("lookup") + field("account", q([]string{"123", "456", "789", "999"}[r.IntN(4)])) + "}"
	case k == 17:
		req.op = "statement"
		req.line = head("statement") + field("limit", strconv.Itoa(1+r.IntN(5))) + "}"
	case k == 18:
		req.line = head("teleport") + "}"
		if !req.fault { // a faulty line's answer names only a known op
			req.op = "teleport"
		}
	case k == 19:
		if c.account != "" {
			req.op = "logout"
			*loggedIn = false
			req.line = head("logout") + "}"
		} else {
			req.op = "login" // a connection that never logs in asks for an unknown account
			req.line = head("login") + field("account", q("999")) + field("pin", q("1234")) + "}"
		}
	default: // not a request object at all
		req = fzReq{id: "", low: low, code: "malformed", fault: true}
		req.line = []string{"hello bank", "[1,2,3]", `"just a string"`, `{"type":"balance","id":`, "42",
			`{"type":"balance","id":"` + id + `","ts":5,"ts":6}`}[r.IntN(6)]
	}
	return req
}

// readLoop reads and checks every message of the connection until it closes.
func (c *fzConn) readLoop(answers chan<- struct{}, stopped <-chan struct{}, last bool) {
	defer close(c.dead)
	t, w := c.raw.t, c.w
	for {
		m, err := c.raw.read()
		if err != nil {
			select {
			case <-stopped:
			default:
				t.Errorf("%s: the connection broke before the server was stopped: %v (last lines: %s)",
					c.name, err, w.recent(c.name))
			}
			return
		}
		if m.TS == nil {
			t.Errorf("%s: a message without ts: %s", c.name, m.raw)
			return
		}
		ts := *m.TS
		w.see(ts, c.name, m.Type+" "+m.ID)
		if ts <= c.lastTS {
			t.Errorf("%s: %s %s at ts %d after ts %d on the same connection", c.name, m.Type, m.ID, ts, c.lastTS)
		}
		c.lastTS = ts
		switch m.Type {
		case "push":
			w.count("pushes_received", 1)
			if c.loggedIn == "" || m.Account != c.loggedIn {
				t.Errorf("%s: push for %s on a session logged in to %q", c.name, m.Account, c.loggedIn)
			}
			if m.ApplyTS == 0 || m.ApplyTS >= ts {
				t.Errorf("%s: push at ts %d of a transfer applied at %d", c.name, ts, m.ApplyTS)
			}
			w.mu.Lock()
			w.pushes = append(w.pushes, fzPush{account: m.Account, from: m.From, to: m.To, kind: m.Kind,
				amount: m.Amount, applyTS: m.ApplyTS, ts: ts})
			w.mu.Unlock()
			continue
		case "bye":
			if !last || m.Code != "shutting_down" {
				t.Errorf("%s: unexpected bye %s", c.name, m.raw)
			}
			c.gotBye = true
			w.count("byes", 1)
			continue
		case "reply", "error":
		default:
			t.Errorf("%s: unexpected message %s", c.name, m.raw)
			continue
		}
		var req fzReq
		select {
		case req = <-c.reqs:
		default:
			t.Errorf("%s: an answer to no request: %s", c.name, m.raw)
			return
		}
		<-c.slots
		c.answered++
		w.count("answers", 1)
		w.mu.Lock()
		ll := append(w.lastLine[c.name], req.line)
		w.lastLine[c.name] = ll[max(0, len(ll)-4):]
		w.mu.Unlock()
		if msg := c.check(req, m); msg != "" {
			t.Errorf("%s: %s\n  sent:   %s\n  answer: %s", c.name, msg, req.line, m.raw)
		}
		c.lastAns = ts
		select {
		case answers <- struct{}{}:
		default:
		}
	}
}

// check judges one answer against its request; it returns what is wrong.
func (c *fzConn) check(req fzReq, m fzWire) string {
	w := c.w
	ts := *m.TS
	if req.id != "" && m.ID != req.id {
		return fmt.Sprintf("answer echoes id %q, want %q", m.ID, req.id)
	}
	if req.id == "" && m.ID != "" {
		return fmt.Sprintf("answer to a line without a readable id echoes id %q", m.ID)
	}
	if req.op != "" && m.Op != req.op {
		return fmt.Sprintf("answer names op %q, want %q", m.Op, req.op)
	}
	if req.code != "" && m.Code != req.code {
		return fmt.Sprintf("code %q, want %q", m.Code, req.code)
	}
	switch m.Code {
	case "invalid_timestamp", "bad_request", "malformed":
		w.count(m.Code, 1)
	}
	// The clock when the server read the line was at least the greatest ts
	// anyone had received before it was written, and this connection's
	// previous answer; at most what could have been observed plus ticks.
	floor := max(req.low, c.lastAns)
	if req.mayTake() {
		w.answered(req.ts)
	}
	_, high := w.bounds()
	limit := fzJumpIn
	if c.loggedIn == "" {
		limit = fzJumpOut
	}
	valid := req.hasTS && req.ts <= fzMaxTS
	mustTake := !req.hasTS || (valid && req.ts <= floor+limit)
	mustRefuse := req.hasTS && (req.ts > fzMaxTS || req.far || req.ts > high+limit)
	refused := m.Code == "invalid_timestamp"
	if !req.fault {
		switch {
		case refused && mustTake:
			return fmt.Sprintf("ts %d refused, but it is at most %d above the clock (>= %d)", req.ts, limit, floor)
		case !refused && mustRefuse:
			return fmt.Sprintf("ts %d accepted, but it is more than %d above the clock (<= %d)", req.ts, limit, high)
		}
	}
	taken := req.hasTS && valid && (mustTake || (!req.fault && !refused))
	if req.mayTake() && (taken || (req.fault && !mustRefuse)) {
		w.took(req.ts) // observed, or perhaps (a faulty line does not say)
	}
	want := floor + 2
	if taken {
		want = max(want, req.ts+2)
	}
	if ts < want {
		return fmt.Sprintf("answer ts %d, want at least %d (clock >= %d, request ts %d observed: %v)", ts, want, floor, req.ts, taken)
	}
	if refused && valid && req.far && ts >= req.ts {
		return fmt.Sprintf("refused ts %d, yet the answer is at %d: the ts was observed", req.ts, ts)
	}
	if !refused && taken && req.ts > floor+fzJumpOut/2 {
		w.count("accepted_jumps", 1)
	}
	if m.RecvTS != 0 && !m.Duplicate {
		rw := floor + 1
		if taken {
			rw = max(rw, req.ts+1)
		}
		if m.RecvTS < rw || m.RecvTS >= ts || (m.ApplyTS != 0 && (m.ApplyTS <= m.RecvTS || m.ApplyTS >= ts)) {
			return fmt.Sprintf("recv_ts %d, apply_ts %d, ts %d: want recv_ts >= %d and recv < apply < ts", m.RecvTS, m.ApplyTS, ts, rw)
		}
	}
	// The session.
	if m.Type == "reply" && c.loggedIn == "" && req.op != "login" {
		return "a reply on a connection that is not logged in"
	}
	if m.Type == "reply" {
		switch req.op {
		case "login":
			c.loggedIn = m.Account
			if m.Account != c.account {
				return fmt.Sprintf("logged in to %q, asked for %q", m.Account, c.account)
			}
		case "logout":
			c.loggedIn = ""
		}
	}
	if m.Type == "error" && m.Code == "" {
		return "an error without a code"
	}
	if req.money {
		w.mu.Lock()
		defer w.mu.Unlock()
		if m.ApplyTS == 0 {
			w.notInLog[req.id] = "answered " + m.Code + " without apply_ts"
			return ""
		}
		code := m.Code
		if m.Type == "reply" {
			code = "ok"
		}
		clientTS := uint64(0)
		if taken {
			clientTS = req.ts
		}
		w.ledger = append(w.ledger, fzMoney{id: req.id, kind: req.op, account: c.loggedIn, to: req.to, code: code,
			amount: req.amount, balance: deref(m.Balance), hasBalance: m.Balance != nil,
			clientTS: clientTS, recv: m.RecvTS, apply: m.ApplyTS, ts: ts})
	}
	return ""
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// fzCheckLog reads the event log offline and checks it against what the
// connections were told, then runs atm verify.
func fzCheckLog(t *testing.T, w *fzWorld, bin, db string) {
	out, err := exec.Command(bin, "log", "--db", db, "--json").Output()
	if err != nil {
		t.Fatalf("atm log: %v", err)
	}
	var prev uint64
	byTS := map[uint64]bank.Event{}
	byReq := map[string][]bank.Event{}
	events := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e bank.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("atm log line %q: %v", sc.Bytes(), err)
		}
		events++
		if e.TS <= prev {
			t.Errorf("the log has ts %d after ts %d", e.TS, prev)
		}
		prev = e.TS
		byTS[e.TS] = e
		if e.ReqID != "" {
			byReq[e.ReqID] = append(byReq[e.ReqID], e)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for id, evs := range byReq {
		money := 0
		for _, e := range evs {
			switch e.Kind {
			case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer:
				money++
			}
		}
		if money > 1 {
			t.Errorf("request %s is applied %d times in the log", id, money)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.ledger {
		evs := byReq[a.id]
		if len(evs) != 1 {
			t.Errorf("%s %s answered %s at apply_ts %d is in the log %d times, want once", a.kind, a.id, a.code, a.apply, len(evs))
			continue
		}
		e := evs[0]
		switch {
		case string(e.Kind) != a.kind || e.Outcome != a.code || e.Account != a.account:
			t.Errorf("%s %s on %s answered %s, but the log has %s on %s → %s", a.kind, a.id, a.account, a.code, e.Kind, e.Account, e.Outcome)
		case e.TS != a.apply || e.RecvTS != a.recv || e.ReplyTS != a.ts || e.ClientTS != a.clientTS:
			t.Errorf("%s %s answered with client/recv/apply/reply ts %d/%d/%d/%d, the log has %d/%d/%d/%d",
				a.kind, a.id, a.clientTS, a.recv, a.apply, a.ts, e.ClientTS, e.RecvTS, e.TS, e.ReplyTS)
		case a.code == "ok" && (int64(e.Amount) != a.amount || !a.hasBalance || int64(e.Balance) != a.balance || (a.kind == string(bank.KindTransfer) && e.To != a.to)):
			t.Errorf("%s %s answered %d → balance %d, the log has %s → %s (to %q)", a.kind, a.id, a.amount, a.balance, e.Amount, e.Balance, e.To)
		}
	}
	for id, why := range w.notInLog {
		if evs := byReq[id]; len(evs) > 0 {
			t.Errorf("request %s (%s) is in the log: %+v", id, why, evs)
		}
	}
	for _, p := range w.pushes {
		// A push tells of money that arrived (transfer_in, or no kind), or
		// of a change another session made to the same account.
		e, ok := byTS[p.applyTS]
		var matches bool
		switch p.kind {
		case "", "transfer_in":
			matches = e.Kind == bank.KindTransfer && e.To == p.account && e.Account == p.from
		case "transfer_out":
			matches = e.Kind == bank.KindTransfer && e.Account == p.account && e.To == p.to
		case "deposit":
			matches = e.Kind == bank.KindDeposit && e.Account == p.account
		case "withdraw":
			matches = e.Kind == bank.KindWithdraw && e.Account == p.account
		}
		if !ok || !matches || e.Outcome != outcome.OutcomeOK || int64(e.Amount) != p.amount {
			t.Errorf("push %+v matches no change in the log (the log has %+v at %d)", p, e, p.applyTS)
		}
		if pe, ok := byTS[p.ts]; !ok || pe.Kind != bank.KindPush || pe.Account != p.account {
			t.Errorf("push %+v is not the log's push event at its ts (the log has %+v)", p, pe)
		}
	}
	if len(w.ledger) == 0 || len(w.pushes) == 0 {
		t.Errorf("%d money answers and %d pushes: the test exercised too little", len(w.ledger), len(w.pushes))
	}
	vout, err := exec.Command(bin, "verify", "--db", db).CombinedOutput()
	if err != nil {
		t.Errorf("atm verify: %v\n%s", err, vout)
	} else {
		t.Logf("atm verify: %s", bytes.TrimSpace(vout))
	}
	t.Logf("the log holds %d events", events)
}

// recent returns the last lines answered on connection name.
func (w *fzWorld) recent(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lastLine[name], " | ")
}
