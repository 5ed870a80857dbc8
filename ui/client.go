package ui

import (
	"context"
	"sync"

	"atm/netproto/client"

	"atm/bank/lamport"
	"atm/bank/money"

	tea "charm.land/bubbletea/v2"
)

// Client is what the screens need from a connection to the bank.
// *client.Client implements it.
type Client interface {
	ProcessID() string
	Clock() *lamport.Clock
	Hello() client.Hello
	Login(ctx context.Context, account, pin string) (client.Reply, error)
	Balance(ctx context.Context) (client.Reply, error)
	Deposit(ctx context.Context, amount money.Cents) (client.Reply, error)
	Withdraw(ctx context.Context, amount money.Cents) (client.Reply, error)
	Transfer(ctx context.Context, to string, amount money.Cents) (client.Reply, error)
	Lookup(ctx context.Context, account string) (client.Reply, error)
	Statement(ctx context.Context, before uint64, limit int) (client.Reply, error)
	Logout(ctx context.Context) (client.Reply, error)
	// Resolve waits for the outcome of a money request whose outcome was
	// unknown (client.ErrOutcomeUnknown).
	Resolve(ctx context.Context, id string) (client.Reply, error)
	Pushes() <-chan client.Push
	Status() <-chan client.ConnStatus
	Close() error
}

var _ Client = (*client.Client)(nil)

// DialFunc opens a connection to the bank at addr.
type DialFunc func(ctx context.Context, addr string, opts client.Options) (Client, error)

// DialNetproto is the DialFunc of the real protocol client.
func DialNetproto(ctx context.Context, addr string, opts client.Options) (Client, error) {
	c, err := client.Dial(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// eventQueue carries clock events from the client's goroutines to the
// program without ever blocking the client: events are appended under a
// lock and a waiting command collects them in one batch.
type eventQueue struct {
	mu     sync.Mutex
	events []client.ClockEvent
	ready  chan struct{} // one token when events is non-empty
	closed chan struct{}
}

func newEventQueue() *eventQueue {
	return &eventQueue{ready: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (q *eventQueue) add(e client.ClockEvent) {
	q.mu.Lock()
	q.events = append(q.events, e)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *eventQueue) close() {
	select {
	case <-q.closed:
	default:
		close(q.closed)
	}
}

// clockEventsMsg is a batch of clock events, in clock order.
type clockEventsMsg []client.ClockEvent

// wait returns a command that waits for the next batch of events.
func (q *eventQueue) wait() tea.Cmd {
	return func() tea.Msg {
		select {
		case <-q.ready:
		case <-q.closed:
			return nil
		}
		q.mu.Lock()
		evs := q.events
		q.events = nil
		q.mu.Unlock()
		return clockEventsMsg(evs)
	}
}

// pushMsg is money that arrived while logged in. gen tells which
// connection it came from.
type pushMsg struct {
	gen  int
	push client.Push
}

// statusMsg is a change of the connection.
type statusMsg struct {
	gen    int
	status client.ConnStatus
	closed bool // the status channel was closed: the client is gone
}

func waitPush(gen int, c Client) tea.Cmd {
	return func() tea.Msg {
		p, ok := <-c.Pushes()
		if !ok {
			return nil
		}
		return pushMsg{gen: gen, push: p}
	}
}

func waitStatus(gen int, c Client) tea.Cmd {
	return func() tea.Msg {
		s, ok := <-c.Status()
		if !ok {
			return statusMsg{gen: gen, closed: true}
		}
		return statusMsg{gen: gen, status: s}
	}
}
