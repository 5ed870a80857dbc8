package client

import (
	"context"

	"atm/netproto/wire"
)

// LogPage is one page of the server's event log, oldest first.
type LogPage struct {
	Events []wire.Entry
	// Next is the after of the following read: the position past the
	// events returned, in the bank's commit order (see wire.Cursor).
	Next wire.Cursor
	TS   uint64 // the server's timestamp on the reply (on a page FollowLog delivers, on its message)
}

// Log is an operator operation: it reads up to limit events of the running
// server's log committed after the cursor after ("": from the start; limit
// 0: the server's default, 100; at most 1000). token must equal the
// server's operator token. Reading page after page, passing Next as after,
// walks the whole log, each event once, and then follows it as it grows,
// on one server or several. It ends the client's FollowLog, if any: the
// server keeps one subscription per connection, and any log request ends
// it.
func (c *Client) Log(ctx context.Context, token string, after wire.Cursor, limit int) (LogPage, error) {
	if f := c.following(); f != nil {
		f.end(ErrFollowEnded)
	}
	r, raw, err := c.doRaw(ctx, wire.Message{Type: wire.OpLog, Token: token, After: after, Limit: limit})
	if err != nil {
		return LogPage{}, err
	}
	next := raw.Next
	if next == "" {
		next = after
	}
	return LogPage{Events: r.Entries, Next: next, TS: r.TS}, nil
}
