package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"atm/netproto/client"
	"atm/netproto/wire"
)

// leanConn is the load generator's own session: the line protocol spoken
// directly, one request at a time, with the Lamport clock kept as the
// protocol requires, but without the client library's reconnection,
// pipelining and per-request bookkeeping. The load generator shares the
// machine with the server, so every microsecond it spends is taken from the
// server; the bench can also drive the library client (--client lib).
type leanConn struct {
	nc      net.Conn
	br      *bufio.Reader
	proc    string
	idTag   string // proc-tag-: request ids unique to this session, run after run
	clock   uint64
	seq     uint64
	out     []byte
	scratch []byte
	timeout time.Duration
}

func dialLean(ctx context.Context, addr, proc string, trust client.TLSOptions) (*leanConn, error) {
	nc, _, err := client.DialTransport(ctx, addr, trust)
	if err != nil {
		return nil, err
	}
	c := &leanConn{nc: nc, br: bufio.NewReaderSize(nc, 8192), proc: proc, timeout: 30 * time.Second,
		idTag: proc + "-" + strconv.FormatUint(rand.Uint64(), 36) + "-"}
	_ = nc.SetReadDeadline(time.Now().Add(c.timeout))
	line, err := c.readLine()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	typ, _ := jsonField(line, "type")
	if string(typ) != wire.TypeHello {
		nc.Close()
		return nil, fmt.Errorf("greeting: got %s", line)
	}
	return c, nil
}

func (c *leanConn) Close() error { return c.nc.Close() }

func (c *leanConn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		c.scratch = append(c.scratch[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = c.br.ReadSlice('\n')
			c.scratch = append(c.scratch, line...)
		}
		line = c.scratch
	}
	if err != nil {
		return nil, err
	}
	ts, _ := jsonField(line, "ts")
	if v, err := strconv.ParseUint(string(ts), 10, 64); err == nil {
		c.clock = max(c.clock, v) + 1 // receive event
	}
	return line, nil
}

// call sends one request whose JSON members after the standard ones are
// fields (starting with a comma, or empty) and waits for its answer. Pushes
// in between are read and dropped.
func (c *leanConn) call(typ, fields string) error {
	c.seq++
	c.clock++ // send event
	id := strconv.AppendUint([]byte(c.idTag), c.seq, 10)
	b := append(c.out[:0], `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","id":"`...)
	b = append(b, id...)
	b = append(b, `","proc":"`...)
	b = append(b, c.proc...)
	b = append(b, `","ts":`...)
	b = strconv.AppendUint(b, c.clock, 10)
	b = append(b, fields...)
	b = append(b, "}\n"...)
	c.out = b
	_ = c.nc.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.nc.Write(b); err != nil {
		return err
	}
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		t, _ := jsonField(line, "type")
		switch string(t) {
		case wire.TypePush:
			continue
		case wire.TypeReply, wire.TypeError:
		default:
			return fmt.Errorf("unexpected %s", bytes.TrimSpace(line))
		}
		if got, _ := jsonField(line, "id"); !bytes.Equal(got, id) {
			return fmt.Errorf("answer to %q while waiting for %q", got, id)
		}
		if string(t) == wire.TypeError {
			var e struct{ Code, Message string }
			_ = json.Unmarshal(line, &e)
			return fmt.Errorf("%s: %s", e.Code, e.Message)
		}
		return nil
	}
}

// jsonField returns the raw value of a top-level string or number member of
// a message as the server writes it (no spaces; the key appears once). It
// is enough for type, id, code and ts; anything else goes through
// encoding/json.
func jsonField(line []byte, key string) ([]byte, bool) {
	var pat [32]byte
	p := append(append(append(pat[:0], '"'), key...), '"', ':')
	i := bytes.Index(line, p)
	if i < 0 {
		return nil, false
	}
	v := line[i+len(p):]
	if len(v) > 0 && v[0] == '"' {
		end := bytes.IndexByte(v[1:], '"')
		if end < 0 {
			return nil, false
		}
		return v[1 : 1+end], true
	}
	end := bytes.IndexAny(v, ",}")
	if end < 0 {
		return nil, false
	}
	return v[:end], true
}

func (c *leanConn) login(account, pin string) error {
	if err := c.call(wire.OpLogin, `,"account":"`+account+`","pin":"`+pin+`"`); err != nil {
		return fmt.Errorf("login refused: %w", err)
	}
	return nil
}
