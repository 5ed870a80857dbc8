package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Cursor is a cursor as it stands on the wire: a statement's "next" and
// "before", a log read's "after" and "next". The server gives it; a client
// keeps it and sends it back as it is. A cursor that is a timestamp (a
// statement's, or the log's of a bank that one server keeps) is a JSON
// number; any other is a JSON string. Either form is accepted in a
// request. MaxCursor bounds its length.
type Cursor string

// MaxCursor is the longest cursor a request may carry, in bytes.
const MaxCursor = 4096

// CursorOf is the cursor of a timestamp (0: none).
func CursorOf(ts uint64) Cursor {
	if ts == 0 {
		return ""
	}
	return Cursor(strconv.FormatUint(ts, 10))
}

// Uint reads a cursor that is a timestamp; ok is false for any other.
func (c Cursor) Uint() (ts uint64, ok bool) {
	if c == "" {
		return 0, true
	}
	ts, err := strconv.ParseUint(string(c), 10, 64)
	return ts, err == nil && string(c) == strconv.FormatUint(ts, 10)
}

// MarshalJSON writes a timestamp cursor as a number, any other as a
// string.
func (c Cursor) MarshalJSON() ([]byte, error) {
	if _, ok := c.Uint(); ok && c != "" {
		return []byte(c), nil
	}
	return json.Marshal(string(c))
}

// UnmarshalJSON reads a number (a whole one, from 0 up) or a string.
func (c *Cursor) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Cursor(s)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*c = ""
		return nil
	}
	ts, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("a cursor is a whole number from 0 up or a string, not %s", b)
	}
	*c = CursorOf(ts)
	return nil
}
