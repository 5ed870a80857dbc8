// Package lamport is a Lamport logical clock: the one clock of every
// process of the atm system (each server, each ATM). It imports nothing of
// the system's own.
//
// The rules, exactly: a clock starts at 0; a local event or a send ticks it
// by one and the message carries the new value; a receive sets it to
// max(local, received)+1. It never wraps and never goes back.
package lamport

import "sync"

// MaxTS is the largest timestamp a clock holds and a message may carry:
// 2^53 − 1, the largest integer every JSON reader (a JavaScript client
// included) holds exactly. A clock never goes past it and never wraps: at
// MaxTS a tick leaves it there, and a received timestamp above it counts as
// MaxTS. The server refuses such timestamps before they reach its clock (see
// netproto/wire/PROTOCOL.md), so only a clock driven to the ceiling on purpose
// ever stops there; the event log then refuses to reuse a timestamp.
const MaxTS uint64 = 1<<53 - 1

// Clock is a Lamport logical clock. It starts at 0 (or at the value given to
// NewClock); Tick advances it by one for a local or send event and Receive sets
// it to max(local, received)+1 for a receive event, never past MaxTS. A Clock is safe for
// concurrent use and its zero value is ready to use.
//
// Every change is delivered, in order, to the functions registered with
// Subscribe. They run with the clock's lock held, so they must be quick and
// must not call back into the clock.
type Clock struct {
	mu   sync.Mutex
	now  uint64
	subs map[int]func(Change)
	next int
}

// Change describes one step of a clock.
type Change struct {
	Old, New uint64
	// Observed is true for a receive event; Received is then the timestamp
	// carried by the message, and New = max(Old, Received)+1.
	Observed bool
	Received uint64
}

// NewClock returns a clock that starts at start (at most MaxTS).
func NewClock(start uint64) *Clock { return &Clock{now: min(start, MaxTS)} }

// Now returns the current value without changing it.
func (c *Clock) Now() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Tick records a local or send event: the clock advances by one and the new
// value, which a sent message carries, is returned.
func (c *Clock) Tick() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.now
	if c.now < MaxTS {
		c.now++
	}
	c.notify(Change{Old: old, New: c.now})
	return c.now
}

// Receive records the receipt of a message stamped with received: the
// clock becomes max(local, received)+1. It returns the step it took, so that
// the rule can be shown: New = max(Old, Received)+1.
func (c *Clock) Receive(received uint64) Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := Change{Old: c.now, New: min(max(c.now, received), MaxTS-1) + 1, Observed: true, Received: received}
	ch.New = max(ch.New, c.now) // at the ceiling the clock stays
	c.now = ch.New
	c.notify(ch)
	return ch
}

// Subscribe registers fn to be called on every change and returns a function
// that removes it.
func (c *Clock) Subscribe(fn func(Change)) (cancel func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs == nil {
		c.subs = make(map[int]func(Change))
	}
	id := c.next
	c.next++
	c.subs[id] = fn
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.subs, id)
	}
}

func (c *Clock) notify(ch Change) {
	for _, fn := range c.subs {
		fn(ch)
	}
}
