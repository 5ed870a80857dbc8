package spacetime

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"atm/netproto/wire"

	"pgregory.net/rapid"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// transferPush is a small log: two ATMs log in, A transfers R$ 25,00 to
// B's account, B gets the push and asks for its balance. Lamport
// arithmetic by hand: a send ticks, a receive is max(clock, ts)+1.
//
// A's transfer reply (13) and B's balance reply (19) are never reported:
// their receives are unknown.
func transferPush() []wire.Entry {
	e := func(ts uint64, kind string) wire.Entry {
		return wire.Entry{TS: ts, Proc: "bank", Kind: kind, Outcome: "ok"}
	}
	req := func(ts uint64, kind, account, client, id string, clientTS, recvTS uint64, seen ...wire.Seen) wire.Entry {
		x := e(ts, kind)
		x.Account, x.Client, x.ReqID, x.ClientTS, x.RecvTS, x.ApplyTS, x.ReplyTS, x.Seen = account, client, id, clientTS, recvTS, ts, ts+1, seen
		return x
	}
	start := e(1, wire.KindServerStart)
	helloA := e(2, wire.KindConnect)
	helloA.Client = "10.0.0.1:5000"
	helloB := e(3, wire.KindConnect)
	helloB.Client = "10.0.0.2:5000"
	loginA := req(6, wire.KindLogin, "123", "atm-a1", "atm-a1-1", 4, 5, wire.Seen{TS: 2, At: 3})
	loginB := req(9, wire.KindLogin, "456", "atm-b2", "atm-b2-1", 5, 8, wire.Seen{TS: 3, At: 4})
	transfer := req(12, wire.KindTransfer, "123", "atm-a1", "atm-a1-2", 9, 11, wire.Seen{TS: 7, At: 8})
	transfer.To, transfer.Amount, transfer.Detail = "456", 2500, "Bruno Lima"
	push := e(14, wire.KindPush)
	push.Client, push.Account, push.To, push.Amount, push.Balance = "atm-b2", "456", "123", 2500, 102500
	balance := req(18, wire.KindBalance, "456", "atm-b2", "atm-b2-2", 16, 17, wire.Seen{TS: 10, At: 11}, wire.Seen{TS: 14, At: 15})
	return []wire.Entry{start, helloA, helloB, loginA, loginB, transfer, push, balance}
}

func TestTransferPushTrace(t *testing.T) {
	t.Parallel()
	tr := Build(transferPush())
	checkTrace(t, tr, nil)
	if len(tr.Procs) != 3 || tr.Procs[0].ID != "bank" || !tr.Procs[0].Bank ||
		tr.Procs[1].ID != "atm-a1" || tr.Procs[1].Label != "123" || tr.Procs[2].Label != "456" {
		t.Fatalf("procs %+v", tr.Procs)
	}
	count := make([]int, 3)
	for _, e := range tr.Events {
		count[e.Proc]++
	}
	if fmt.Sprint(count) != "[16 4 5]" {
		t.Fatalf("events per process %v, want [16 4 5]", count)
	}
	unknown := 0
	for _, m := range tr.Messages {
		if m.Recv < 0 {
			unknown++
			if l := tr.Events[m.Send].L; l != 13 && l != 19 {
				t.Errorf("message sent at %d has an unknown receive", l)
			}
		}
	}
	if len(tr.Messages) != 11 || unknown != 2 {
		t.Fatalf("%d messages, %d unknown; want 11, 2", len(tr.Messages), unknown)
	}
	ev := func(proc string, l uint64) int {
		for _, e := range tr.Events {
			if tr.Procs[e.Proc].ID == proc && e.L == l {
				return e.ID
			}
		}
		t.Fatalf("no event %s@%d", proc, l)
		return -1
	}
	transferSend, push, pushRecv := ev("atm-a1", 9), ev("bank", 14), ev("atm-b2", 15)
	if tr.Events[transferSend].What != "transfer" || tr.Events[push].What != "push" || tr.Events[pushRecv].What != "recv push" {
		t.Fatalf("labels %q %q %q", tr.Events[transferSend].What, tr.Events[push].What, tr.Events[pushRecv].What)
	}
	if !tr.HappenedBefore(transferSend, pushRecv) || tr.HappenedBefore(pushRecv, transferSend) {
		t.Fatal("the transfer's send must happen before the push's receive")
	}
	if got := tr.VCString(pushRecv); got != `{"bank":13, "atm-a1":4, "atm-b2":4}` {
		t.Fatalf("VC of the push's receive %s", got)
	}
	// A's receive of its transfer reply is unknown: A's last event is
	// the transfer's send, concurrent with everything of B after the push.
	if !tr.Concurrent(transferSend, ev("atm-b2", 11)) {
		t.Fatal("A's transfer and B's receive of its login reply are concurrent")
	}
	past, future := tr.Causal(push)
	if !contains(past, transferSend) || !contains(future, pushRecv) || contains(future, ev("bank", 13)) {
		t.Fatalf("Causal(push): past %v future %v", past, future)
	}
	if contains(past, push) || contains(future, push) {
		t.Fatal("an event is in its own causal past or future")
	}
}

func contains(s []int, x int) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

var shivizRE = regexp.MustCompile(`(?m)^(.*)\n(\S*) (\{.*\})$`)

// checkShiViz parses a ShiViz log with the default expression and checks
// what ShiViz checks: each host's own component starts at 1 and grows by
// one; an event's clock is its host's previous clock plus its tick, or the
// component-wise max with an earlier event's clock (a receive) plus its
// tick; clocks name only hosts, and only events already written.
func checkShiViz(t rapid.TB, out string) (hosts map[string]int) {
	t.Helper()
	ms := shivizRE.FindAllStringSubmatchIndex(out, -1)
	covered := 0
	clocks := map[string][]map[string]uint64{} // host → its events' clocks
	for _, m := range ms {
		if strings.TrimSpace(out[covered:m[0]]) != "" {
			t.Fatalf("unparsed text %q", out[covered:m[0]])
		}
		covered = m[1]
		host, clockText := out[m[4]:m[5]], out[m[6]:m[7]]
		var clock map[string]uint64
		if err := json.Unmarshal([]byte(clockText), &clock); err != nil {
			t.Fatalf("clock %q: %v", clockText, err)
		}
		prev := map[string]uint64{}
		if n := len(clocks[host]); n > 0 {
			prev = clocks[host][n-1]
		}
		if clock[host] != prev[host]+1 {
			t.Fatalf("%s: own component %d after %d", host, clock[host], prev[host])
		}
		for h, v := range clock {
			if v == 0 {
				t.Fatalf("%s: zero component for %s", host, h)
			}
			if h != host && v > uint64(len(clocks[h])) {
				t.Fatalf("%s: clock %s names %s's event %d, not written yet", host, clockText, h, v)
			}
		}
		tick := func(base map[string]uint64) map[string]uint64 {
			c := map[string]uint64{}
			for h, v := range base {
				c[h] = v
			}
			c[host] = prev[host] + 1
			return c
		}
		ok := equalClock(clock, tick(prev))
		for h, v := range clock {
			if ok {
				break
			}
			if h == host || v <= prev[h] {
				continue
			}
			sender := clocks[h][v-1]
			merged := tick(prev)
			for k, x := range sender {
				if k != host && x > merged[k] {
					merged[k] = x
				}
			}
			ok = equalClock(clock, merged)
		}
		if !ok {
			t.Fatalf("%s %s: neither a local tick of %v nor a receive", host, clockText, prev)
		}
		clocks[host] = append(clocks[host], clock)
	}
	if strings.TrimSpace(out[covered:]) != "" {
		t.Fatalf("unparsed text at the end: %q", out[covered:])
	}
	hosts = map[string]int{}
	for h, cs := range clocks {
		hosts[h] = len(cs)
		for _, c := range cs {
			for k := range c {
				if _, ok := clocks[k]; !ok {
					t.Fatalf("clock names %s, which is no host", k)
				}
			}
		}
	}
	return hosts
}

func equalClock(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestShiVizGolden(t *testing.T) {
	t.Parallel()
	tr := Build(transferPush())
	var b bytes.Buffer
	if err := WriteShiViz(&b, tr); err != nil {
		t.Fatal(err)
	}
	hosts := checkShiViz(t, b.String())
	if fmt.Sprint(hosts) != "map[atm-a1:4 atm-b2:5 bank:16]" {
		t.Fatalf("hosts %v", hosts)
	}
	golden := filepath.Join("testdata", "transfer_push.shiviz")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("ShiViz output differs from %s:\n%s", golden, b.String())
	}
}

func TestPropertyShiVizValid(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		entries, _ := genHistory(rt)
		tr := Build(entries)
		var b bytes.Buffer
		if err := WriteShiViz(&b, tr); err != nil {
			rt.Fatal(err)
		}
		hosts := checkShiViz(rt, b.String())
		for p, pr := range tr.Procs {
			if hosts[pr.ID] != len(tr.lanes[p]) {
				rt.Fatalf("%s: %d ShiViz events, %d in the trace", pr.ID, hosts[pr.ID], len(tr.lanes[p]))
			}
		}
		// A sub-trace is a ShiViz log of its own.
		f := Filter{From: rapid.Uint64Range(0, 40).Draw(rt, "from")}
		f.To = f.From + rapid.Uint64Range(0, 60).Draw(rt, "span")
		b.Reset()
		sub := tr.Filter(f)
		checkTrace(rt, sub, nil)
		if err := WriteShiViz(&b, sub); err != nil {
			rt.Fatal(err)
		}
		checkShiViz(rt, b.String())
	})
}

func TestTextDiagram(t *testing.T) {
	t.Parallel()
	tr := Build(transferPush())
	for _, width := range []int{80, 120} {
		t.Run(strconv.Itoa(width), func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteText(&b, tr, width); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			for _, l := range lines {
				if n := utf8.RuneCountInString(l); n > width {
					t.Fatalf("line of %d columns at width %d: %q", n, width, l)
				}
			}
			for _, p := range tr.Procs {
				if !strings.Contains(lines[0], p.ID) {
					t.Fatalf("header %q lacks %s", lines[0], p.ID)
				}
			}
			if !strings.Contains(lines[1], "(123)") || !strings.Contains(lines[1], "(456)") {
				t.Fatalf("labels line %q", lines[1])
			}
			rows := lines[2:]
			if len(rows) != len(tr.Events) {
				t.Fatalf("%d rows for %d events:\n%s", len(rows), len(tr.Events), out)
			}
			for _, e := range tr.Events {
				mark := fmt.Sprintf("●%d", e.L)
				found := false
				for _, r := range rows {
					if strings.Contains(r, mark) && strings.Contains(r, tr.Procs[e.Proc].ID+" "+e.What) {
						found = true
					}
				}
				if !found {
					t.Fatalf("no row with %s for %s %s:\n%s", mark, tr.Procs[e.Proc].ID, e.What, out)
				}
			}
			arrows, stubs := 0, 0
			for _, m := range tr.Messages {
				s := tr.Events[m.Send]
				if m.Recv < 0 {
					stubs++
					continue
				}
				arrows++
				r := tr.Events[m.Recv]
				from := fmt.Sprintf("← %s@%d", tr.Procs[s.Proc].ID, s.L)
				to := fmt.Sprintf("→ %s@%d", tr.Procs[r.Proc].ID, r.L)
				if !strings.Contains(out, from) || !strings.Contains(out, to) {
					t.Fatalf("message %s %d→%d not drawn:\n%s", m.What, s.L, r.L, out)
				}
			}
			if got := strings.Count(out, "▶") + strings.Count(out, "◀"); got != arrows {
				t.Fatalf("%d arrow heads for %d messages:\n%s", got, arrows, out)
			}
			if got := strings.Count(out, "─?"); got != stubs {
				t.Fatalf("%d unknown-receive stubs for %d:\n%s", got, stubs, out)
			}
			if strings.Contains(out, "not shown") {
				t.Fatalf("a lane is left out at width %d:\n%s", width, out)
			}
		})
	}
}

func TestTextNarrowLeavesLanesOut(t *testing.T) {
	t.Parallel()
	tr := Build(transferPush())
	var b bytes.Buffer
	if err := WriteText(&b, tr, 40); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "not shown (too narrow): atm-a1") {
		t.Fatalf("narrow diagram does not say what it leaves out:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if utf8.RuneCountInString(l) > 40 {
			t.Fatalf("line wider than 40: %q", l)
		}
	}
}

func TestSVGWellFormed(t *testing.T) {
	t.Parallel()
	tr := Build(transferPush())
	var b bytes.Buffer
	if err := WriteSVG(&b, tr); err != nil {
		t.Fatal(err)
	}
	checkSVG(t, b.Bytes(), tr)
}

func checkSVG(t rapid.TB, svg []byte, tr *Trace) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	lifelines := map[string]int{}
	labels := map[string]bool{}
	messages, unknown, circles := 0, 0, 0
	inText := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG: %v\n%s", err, svg)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range tk.Attr {
				attr[a.Name.Local] = a.Value
			}
			switch tk.Name.Local {
			case "line":
				switch attr["class"] {
				case "lifeline":
					lifelines[attr["data-proc"]]++
				case "message":
					messages++
				case "message unknown":
					messages++
					unknown++
					if attr["stroke-dasharray"] == "" {
						t.Fatal("an unknown receive's stub is not dashed")
					}
				}
			case "circle":
				circles++
			case "text":
				inText = true
			}
		case xml.CharData:
			if inText {
				labels[strings.Fields(string(tk) + " x")[0]] = true
			}
		case xml.EndElement:
			inText = false
		}
	}
	if len(lifelines) != len(tr.Procs) {
		t.Fatalf("lifelines %v for %d processes", lifelines, len(tr.Procs))
	}
	for _, p := range tr.Procs {
		if lifelines[p.ID] != 1 || !labels[p.ID] {
			t.Fatalf("process %s: %d lifelines, labelled %v", p.ID, lifelines[p.ID], labels[p.ID])
		}
	}
	wantUnknown := 0
	for _, m := range tr.Messages {
		if m.Recv < 0 || m.Send < 0 {
			wantUnknown++
		}
	}
	if messages != len(tr.Messages) || unknown != wantUnknown || circles != len(tr.Events) {
		t.Fatalf("%d message lines (%d unknown), %d dots; want %d (%d), %d", messages, unknown, circles, len(tr.Messages), wantUnknown, len(tr.Events))
	}
}

func TestPropertySVGWellFormed(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		entries, _ := genHistory(rt)
		tr := Build(entries)
		var b bytes.Buffer
		if err := WriteSVG(&b, tr); err != nil {
			rt.Fatal(err)
		}
		checkSVG(rt, b.Bytes(), tr)
	})
}
