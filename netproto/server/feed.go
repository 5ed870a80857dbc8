package server

import (
	"context"
	"fmt"
	"log/slog"

	"atm/netproto/wire"

	"atm/bank"
)

// ChangeFeed is implemented by a ledger that several servers share (such
// as bank/etcdstore): Changes delivers, in commit order, the successful
// money events (deposit, withdraw, transfer) that other processes commit,
// until ctx ends; then the channel is closed. When Server.Ledger
// implements it, Serve pushes those changes to the sessions of this
// server as it pushes its own.
type ChangeFeed interface {
	Changes(ctx context.Context) <-chan bank.Event
}

// startFeed starts the goroutine that follows the ledger's change feed,
// if it has one; Shutdown stops it.
func (s *Server) startFeed() {
	f, ok := s.Ledger.(ChangeFeed)
	if !ok {
		return
	}
	ch := f.Changes(s.ctx)
	done := make(chan struct{})
	s.mu.Lock()
	s.feedDone = done
	s.mu.Unlock()
	go func() {
		defer close(done)
		for e := range ch {
			s.remoteChange(e)
		}
	}()
}

// stopFeed waits for the feed's goroutine to end, after s.cancel.
func (s *Server) stopFeed() {
	s.mu.Lock()
	done := s.feedDone
	s.mu.Unlock()
	if done != nil {
		<-done
	}
}

// remoteChange handles a money change another server committed: the event
// is a message from that server, so the clock first receives its
// timestamp (the max rule), then the sessions of the accounts it changed
// are told, exactly as for a change made here.
func (s *Server) remoteChange(e bank.Event) {
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1) // pushes start goroutines in the group: keep it above zero
	s.mu.Unlock()
	defer s.wg.Done()
	defer s.recoverPanic(fmt.Sprintf("pushing the change L=%d of %s", e.TS, e.Proc))

	step := s.Ledger.Clock().Receive(e.TS)
	what := fmt.Sprintf("%s %s %s", e.Kind, e.Account, e.Amount)
	if e.Kind == bank.KindTransfer {
		what = fmt.Sprintf("transfer %s %s to %s", e.Account, e.Amount, e.To)
	}
	s.logf(step.New, "recv", fmt.Sprintf("recv %s committed by %s at L=%d, max(%d,%d)+1", what, e.Proc, e.TS, step.Old, step.Received),
		slog.String("op", string(e.Kind)), slog.String("account", e.Account), slog.String("peer", e.Proc),
		slog.Uint64("remote_ts", e.TS))

	own := pushItem{account: e.Account, amount: e.Amount, balance: e.Balance, applyTS: e.TS, origin: e.Proc, recvTS: step.New}
	switch e.Kind {
	case bank.KindDeposit:
		own.kind = wire.PushDeposit
	case bank.KindWithdraw:
		own.kind = wire.PushWithdraw
	case bank.KindTransfer:
		s.notify(pushItem{kind: wire.PushTransferIn, account: e.To, from: e.Account,
			amount: e.Amount, balance: e.ToBalance, applyTS: e.TS, origin: e.Proc, recvTS: step.New}, nil)
		own.kind, own.to, own.toHolder = wire.PushTransferOut, e.To, e.Detail
	default:
		return
	}
	s.notify(own, nil)
}
