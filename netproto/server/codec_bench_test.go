package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"

	"atm/netproto/wire"
)

// Codec benchmarks: one request and one reply of the hot path (a transfer),
// encoded and decoded as the server and the client do it.

var benchTransferReq = wire.Message{Type: wire.OpTransfer, ID: "atm-3f2a-9c1e-12345", Proc: "atm-3f2a", TS: 123456,
	To: "880000064", Amount: "1"}

func benchTransferReply() *wire.Message {
	return &wire.Message{Type: wire.TypeReply, ID: "atm-3f2a-9c1e-12345", Op: wire.OpTransfer, Proc: "bank", TS: 1234570,
		RecvTS: 1234567, ApplyTS: 1234568, Account: "880000000", Amount: wire.AmountOf(1),
		Balance: wire.CentsPtr(4_999_000), To: "880000064", ToHolder: "Bench 64"}
}

func BenchmarkCodec(b *testing.B) {
	reqLine, _ := json.Marshal(&benchTransferReq)
	replyLine, _ := json.Marshal(benchTransferReply())
	b.Run("encode-request", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(reqLine) + 1))
		for b.Loop() {
			m := benchTransferReq
			if _, err := json.Marshal(&m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-request", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(reqLine) + 1))
		for b.Loop() {
			m := new(wire.Message)
			if err := json.Unmarshal(reqLine, m); err != nil {
				b.Fatal(err)
			}
			if _, err := m.Amount.Cents(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-reply", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(replyLine) + 1))
		for b.Loop() {
			if _, err := json.Marshal(benchTransferReply()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-reply", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(replyLine) + 1))
		for b.Loop() {
			m := new(wire.Message)
			if err := json.Unmarshal(replyLine, m); err != nil {
				b.Fatal(err)
			}

		}
	})
	// readLine over a buffered stream of pipelined requests.
	b.Run("read-lines", func(b *testing.B) {
		stream := bytes.Repeat(append(reqLine, '\n'), 256)
		b.ReportAllocs()
		b.SetBytes(int64(len(reqLine) + 1))
		var scratch []byte
		r := bytes.NewReader(stream)
		br := bufio.NewReaderSize(r, 4096)
		n := 0
		for b.Loop() {
			if n == 256 {
				r.Reset(stream)
				br.Reset(r)
				n = 0
			}
			if _, err := wire.ReadLine(br, wire.DefaultMaxLineBytes, &scratch); err != nil {
				b.Fatal(err)
			}
			n++
		}
	})
}

// BenchmarkDecodeRequest is the server's whole reading of a request line:
// UTF-8 and I-JSON checks, then the decoding.
func BenchmarkDecodeRequest(b *testing.B) {
	line, _ := json.Marshal(&benchTransferReq)
	b.ReportAllocs()
	b.SetBytes(int64(len(line) + 1))
	for b.Loop() {
		if d := decodeRequest(line); d.fault != nil {
			b.Fatal(d.fault.msg)
		}
	}
}
