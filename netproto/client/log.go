package client

import (
	"context"

	"atm/netproto/wire"
)

// LogPage is one page of the server's event log, oldest first.
type LogPage struct {
	Events []wire.Entry
	// Next is the after of the following read: the timestamp of the last
	// event returned, or the after asked for when there was none.
	Next uint64
	TS   uint64 // the server's timestamp on the reply
}

// Log is an operator operation: it reads up to limit events of the running
// server's log with timestamps above after (limit 0: the server's default,
// 100; at most 1000). token must equal the server's operator token. Reading
// page after page, passing Next as after, walks the whole log, and then
// follows it as it grows.
func (c *Client) Log(ctx context.Context, token string, after uint64, limit int) (LogPage, error) {
	r, _, err := c.doRaw(ctx, wire.Message{Type: wire.OpLog, Token: token, After: after, Limit: limit})
	if err != nil {
		return LogPage{}, err
	}
	next := r.Next
	if next == 0 {
		next = after
	}
	return LogPage{Events: r.Entries, Next: next, TS: r.TS}, nil
}
