package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"atm/netproto/wire"
)

// Limits on the fields a client sends. Every field from the wire is checked
// against them before it is used, printed or stored.
const (
	// MaxJumpLoggedOut is how far above the server's clock a request from a
	// connection that is not logged in may stamp itself; MaxJump is the same
	// for a logged-in session. A request stamped further ahead is refused
	// with invalid_timestamp and its timestamp is not observed.
	MaxJumpLoggedOut = 1 << 20
	MaxJump          = 1 << 32
)

// fault is a request refused before it reaches the ledger: its error code
// and the sentence sent with it.
type fault struct {
	code, msg string
}

// decoded is what the server could read of a request line.
type decoded struct {
	req   *wire.Message // the request; with a fault, only the fields read safely
	ts    uint64        // the timestamp it carries
	hasTS bool          // ts could be read as a whole number
	fault *fault        // nil when the line is a well-formed request object
}

// decodeRequest reads one request line. A line is well formed when it is
// valid UTF-8 holding exactly one JSON object whose field names appear once
// each, with the exact (lower-case) names of the protocol, and whose known
// fields hold values of the right JSON types.
func decodeRequest(line []byte) decoded {
	t := trimJSONSpace(line)
	if !utf8.Valid(t) {
		return decoded{req: new(wire.Message), fault: &fault{wire.CodeMalformed, "the line is not valid UTF-8"}}
	}
	if len(t) > 0 && t[0] != '{' {
		if json.Valid(t) {
			return decoded{req: new(wire.Message), fault: &fault{wire.CodeMalformed, "the line is a JSON " + wire.JSONKind(t) + ", not an object"}}
		}
	}
	req := new(wire.Message)
	err := json.Unmarshal(t, req)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return decoded{req: new(wire.Message), fault: &fault{wire.CodeMalformed, "the line is not a JSON object: " + se.Error()}}
	}
	// A syntactically valid object: its names must be unique and exact.
	// The names seen so far: a few, compared in place (a request has about
	// six fields), then a map for objects with many.
	var few [16][]byte
	var nFew int
	var many map[string]bool
	var kf *fault
	hasTS := false
	scanErr := eachKey(t, func(k []byte) {
		if kf != nil {
			return
		}
		dup := many[string(k)]
		for _, prev := range few[:nFew] {
			dup = dup || bytes.Equal(prev, k)
		}
		switch {
		case dup:
			kf = &fault{wire.CodeMalformed, fmt.Sprintf("the field %q appears more than once", k)}
			return
		case !knownFields[string(k)]:
			if name := knownFolded[strings.ToLower(string(k))]; name != "" {
				kf = &fault{wire.CodeBadRequest, fmt.Sprintf("field names are lower case: %q, not %q", name, k)}
				return
			}
		}
		hasTS = hasTS || string(k) == "ts"
		if nFew < len(few) {
			few[nFew] = k
			nFew++
			return
		}
		if many == nil {
			many = make(map[string]bool)
		}
		many[string(k)] = true
	})
	if scanErr != nil {
		return decoded{req: new(wire.Message), fault: &fault{wire.CodeMalformed, "the line is not a JSON object"}}
	}
	if kf != nil && kf.code == wire.CodeMalformed {
		// Repeated names make the fields ambiguous: echo nothing, observe
		// nothing.
		return decoded{req: new(wire.Message), fault: kf}
	}
	if kf != nil {
		head, ts, hasTS := requestHead(t)
		return decoded{req: head, ts: ts, hasTS: hasTS, fault: kf}
	}
	if err != nil {
		// A field that cannot hold its value, such as an amount given as
		// text: answered with the request's id and type when those can be
		// read, and its timestamp observed when it is a whole number.
		head, ts, hasTS := requestHead(t)
		return decoded{req: head, ts: ts, hasTS: hasTS, fault: &fault{wire.CodeBadRequest, wire.WrongFieldText(err)}}
	}
	return decoded{req: req, ts: req.TS, hasTS: hasTS || req.TS != 0}
}

// requestHead reads the id, type and timestamp of a JSON object whose full
// decoding failed. Each is kept only when it has the right type and, for id
// and type, passes its checks.
func requestHead(obj []byte) (*wire.Message, uint64, bool) {
	var head map[string]json.RawMessage
	m := new(wire.Message)
	if json.Unmarshal(obj, &head) != nil {
		return m, 0, false
	}
	var id, typ string
	if json.Unmarshal(head["id"], &id) == nil && wire.ValidRequestID(id) {
		m.ID = id
	}
	if json.Unmarshal(head["type"], &typ) == nil && knownType(typ) {
		m.Type = typ
	}
	ts, err := strconv.ParseUint(string(head["ts"]), 10, 64)
	return m, ts, err == nil
}

// knownFields are the field names of the protocol's messages; knownFolded
// maps their lower-case forms to them.
var knownFields, knownFolded = func() (map[string]bool, map[string]string) {
	exact, folded := map[string]bool{}, map[string]string{}
	rt := reflect.TypeFor[wire.Message]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			exact[name] = true
			folded[strings.ToLower(name)] = name
		}
	}
	return exact, folded
}()

var errScan = errors.New("not a JSON object")

// eachKey calls fn with every field name of the JSON object in b, in order,
// unescaped (fn must not keep the slice beyond b's life). b must be
// syntactically valid JSON.
func eachKey(b []byte, fn func([]byte)) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errScan
	}
	i++
	for {
		i = skipSpace(b, i)
		if i >= len(b) {
			return errScan
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
		if i >= len(b) || b[i] != '"' {
			return errScan
		}
		end, err := stringEnd(b, i)
		if err != nil {
			return err
		}
		raw := b[i:end]
		if bytes.IndexByte(raw, '\\') < 0 {
			fn(raw[1 : len(raw)-1])
		} else {
			var k string
			if json.Unmarshal(raw, &k) != nil {
				return errScan
			}
			fn([]byte(k))
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return errScan
		}
		if i, err = valueEnd(b, skipSpace(b, i+1)); err != nil {
			return err
		}
	}
}

// trimJSONSpace trims the whitespace JSON allows around a value: space, tab,
// CR and LF (not the other characters bytes.TrimSpace takes).
func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just after the string starting at b[i].
func stringEnd(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errScan
}

// valueEnd returns the index just after the value starting at b[i].
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errScan
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := stringEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errScan
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j, nil
}
