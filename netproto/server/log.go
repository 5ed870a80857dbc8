package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"atm/netproto/wire"

	"atm/bank"
	"atm/bank/outcome"
)

// LogEvent logs a committed event of the bank: the apply and reply of an
// operation (two records, at the apply and reply timestamps), and the
// server's own events (connect, push, disconnect, logout, start, stop...).
// Pass it as bank.Options.OnEvent so that, together with the receive records
// the Server logs itself, every change of the server's clock shows once.
func (s *Server) LogEvent(e bank.Event) {
	if s.Logger == nil {
		return
	}
	base := []slog.Attr{slog.String("kind", string(e.Kind)), slog.String("outcome", e.Outcome)}
	add := func(k, v string) {
		if v != "" {
			base = append(base, slog.String(k, v))
		}
	}
	add("account", e.Account)
	add("to", e.To)
	add("peer", e.Client)
	add("req", e.ReqID)
	add("detail", e.Detail)
	if e.Amount != 0 {
		base = append(base, slog.Int64("amount", int64(e.Amount)))
	}
	switch e.Kind {
	case bank.KindConnect:
		s.logf(e.TS, "connect", fmt.Sprintf("connect %s, send hello", e.Client), base...)
	case bank.KindDisconnect:
		s.logf(e.TS, "disconnect", fmt.Sprintf("disconnect %s%s (%s)", e.Client, accountSuffix(e.Account), e.Detail), base...)
	case bank.KindPush:
		s.logf(e.TS, "send", "send push "+pushLogText(e), append(base, slog.Int64("balance", int64(e.Balance)))...)
	case bank.KindServerStart:
		s.logf(e.TS, "start", "server start, "+e.Detail, base...)
	case bank.KindServerStop:
		s.logf(e.TS, "stop", "server stop, "+e.Detail, base...)
	case bank.KindOpen:
		text := fmt.Sprintf("open account %s (%s)", e.Account, e.Detail)
		if e.Outcome != outcome.OutcomeOK {
			text = fmt.Sprintf("open account %s refused: %s", e.Account, e.Outcome)
		}
		s.logf(e.TS, "apply", text, base...)
	case bank.KindLock:
		s.logf(e.TS, "apply", fmt.Sprintf("lock account %s, %s", e.Account, e.Detail), base...)
	case bank.KindLogout:
		s.logf(e.TS, "apply", fmt.Sprintf("logout %s by %s", e.Account, e.Client), base...)
	default:
		s.logf(e.TS, "apply", "apply "+applyText(e), append(base, slog.Int64("balance", int64(e.Balance)),
			slog.Uint64("recv_ts", e.RecvTS), slog.Uint64("reply_ts", e.ReplyTS))...)
	}
	// The reply's tick is reserved in the event: its send is printed here.
	if e.ReplyTS != 0 {
		op := string(e.Kind)
		if e.Kind == bank.KindOpen {
			op = wire.OpOpenAccount
		}
		what := "reply " + op
		if e.Outcome != outcome.OutcomeOK {
			what = "error " + e.Outcome + " " + op
		}
		s.logf(e.ReplyTS, "send", fmt.Sprintf("send %s to %s%s", what, e.Client, reqSuffix(e.ReqID)),
			slog.String("op", op), slog.String("outcome", e.Outcome), slog.String("peer", e.Client), slog.String("req", e.ReqID))
	}
}

func accountSuffix(a string) string {
	if a == "" {
		return ""
	}
	return " account " + a
}

// applyText is the readable part of an apply line.
func applyText(e bank.Event) string {
	var b strings.Builder
	b.WriteString(string(e.Kind))
	b.WriteByte(' ')
	b.WriteString(orDash(e.Account))
	switch e.Kind {
	case bank.KindDeposit:
		fmt.Fprintf(&b, " +%s", e.Amount)
	case bank.KindWithdraw:
		fmt.Fprintf(&b, " -%s", e.Amount)
	case bank.KindTransfer:
		fmt.Fprintf(&b, " → %s %s", orDash(e.To), e.Amount)
	case bank.KindRetry:
		fmt.Fprintf(&b, " req=%s: %s (first at L=%d)", e.ReqID, e.Detail, e.OrigTS)
	}
	if e.Outcome == outcome.OutcomeOK {
		switch e.Kind {
		case bank.KindDeposit, bank.KindWithdraw, bank.KindTransfer, bank.KindBalance:
			fmt.Fprintf(&b, " → %s", e.Balance)
		}
	}
	b.WriteByte(' ')
	b.WriteString(e.Outcome)
	return b.String()
}

// NewLineHandler returns a slog handler that writes one readable line per
// record: "L=42 " followed by the message, or the message alone for a record
// without an "L" attribute. It is the server's default output format; use
// slog.NewJSONHandler for machines. Attributes added with WithAttrs and
// groups are not printed.
func NewLineHandler(w io.Writer, level slog.Leveler) slog.Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &lineHandler{w: w, level: level}
}

type lineHandler struct {
	w     io.Writer
	mu    sync.Mutex
	level slog.Leveler
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	buf := make([]byte, 0, 128)
	var ts uint64
	var hasTS bool
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "L" {
			ts, hasTS = a.Value.Uint64(), true
			return false
		}
		return true
	})
	if hasTS {
		buf = append(buf, "L="...)
		buf = strconv.AppendUint(buf, ts, 10)
		buf = append(buf, ' ')
	}
	if r.Level >= slog.LevelWarn {
		buf = append(buf, r.Level.String()...)
		buf = append(buf, ": "...)
	}
	buf = appendEscaped(buf, r.Message)
	if !hasTS {
		r.Attrs(func(a slog.Attr) bool {
			buf = append(buf, ' ')
			buf = appendEscaped(buf, a.Key)
			buf = append(buf, '=')
			buf = appendEscaped(buf, a.Value.String())
			return true
		})
	}
	buf = append(buf, '\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(buf)
	return err
}

// EscapeControl returns s with its control characters and invalid UTF-8
// escaped (see appendEscaped): text from a client, printed on one line,
// stays on that line.
func EscapeControl(s string) string { return string(appendEscaped(nil, s)) }

// appendEscaped appends s with every control character (C0, DEL, C1, the
// Unicode line and paragraph separators) and every invalid UTF-8 byte
// escaped as Go would quote it, so that one record is always one line and
// no text from a client can start another.
func appendEscaped(buf []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			buf = append(buf, `\x`...)
			buf = append(buf, "0123456789abcdef"[s[i]>>4], "0123456789abcdef"[s[i]&15])
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0, r == 0x2028, r == 0x2029:
			q := strconv.QuoteRune(r)
			buf = append(buf, q[1:len(q)-1]...)
		default:
			buf = append(buf, s[i:i+n]...)
		}
		i += n
	}
	return buf
}

func (h *lineHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h *lineHandler) WithGroup(string) slog.Handler { return h }

// pushLogText describes a push event: the change it reports (from its
// detail, see pushDetail), the peer it goes to and the balance after.
func pushLogText(e bank.Event) string {
	switch {
	case strings.HasPrefix(e.Detail, pushWhat(wire.PushDeposit)+" "):
		return fmt.Sprintf("%s deposit +%s to %s → %s", e.Account, e.Amount, e.Client, e.Balance)
	case strings.HasPrefix(e.Detail, pushWhat(wire.PushWithdraw)+" "):
		return fmt.Sprintf("%s withdrawal -%s to %s → %s", e.Account, e.Amount, e.Client, e.Balance)
	case strings.HasPrefix(e.Detail, pushWhat(wire.PushTransferOut)+" "):
		return fmt.Sprintf("%s transfer -%s to account %s, to %s → %s", e.Account, e.Amount, e.To, e.Client, e.Balance)
	}
	return fmt.Sprintf("%s +%s from %s to %s → %s", e.Account, e.Amount, e.To, e.Client, e.Balance)
}

// logf emits one log record for a clock change at ts.
func (s *Server) logf(ts uint64, event, msg string, attrs ...slog.Attr) {
	if s.Logger == nil {
		return
	}
	all := make([]slog.Attr, 0, len(attrs)+2)
	all = append(all, slog.Uint64("L", ts), slog.String("event", event))
	for _, a := range attrs {
		if a.Value.Kind() == slog.KindString && a.Value.String() == "" {
			continue
		}
		all = append(all, a)
	}
	s.Logger.LogAttrs(context.Background(), slog.LevelInfo, msg, all...)
}

// warnf emits a warning that is not a clock change (it carries no L).
func (s *Server) warnf(msg string, attrs ...slog.Attr) {
	if s.Logger != nil {
		s.Logger.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
	}
}

func reqSuffix(id string) string {
	if id == "" {
		return ""
	}
	return " req=" + id
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
