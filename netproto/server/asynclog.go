package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLogQueue is the number of records an AsyncHandler holds for its
// output by default.
const DefaultLogQueue = 1 << 16

// AsyncHandler hands records to another handler from a goroutine of its
// own, through a bounded queue, so that logging never waits for the output:
// a server printing to a terminal that is paused, or to a pipe nobody
// reads, keeps serving. When the queue is full a record is dropped and
// counted; once the output takes records again, a warning says how many
// were lost. Records keep their order. (The event log in the bank is the
// record of what happened; the printed log is a view of it.)
type AsyncHandler struct {
	h       slog.Handler
	q       chan queued
	dropped atomic.Uint64
	done    chan struct{}
	once    sync.Once
	mu      sync.RWMutex // guards closed against sends on q
	closed  bool
}

// NewAsyncHandler returns an AsyncHandler writing to h through a queue of
// size records (DefaultLogQueue if size <= 0). Close it to flush.
func NewAsyncHandler(h slog.Handler, size int) *AsyncHandler {
	if size <= 0 {
		size = DefaultLogQueue
	}
	a := &AsyncHandler{h: h, q: make(chan queued, size), done: make(chan struct{})}
	go a.run()
	return a
}

func (a *AsyncHandler) run() {
	defer close(a.done)
	ctx := context.Background()
	var reported uint64
	report := func() {
		if d := a.dropped.Load(); d > reported {
			w := slog.NewRecord(time.Now(), slog.LevelWarn,
				fmt.Sprintf("the output did not keep up: %d log lines dropped (the event log has every event: atm log)", d-reported), 0)
			_ = a.h.Handle(ctx, w)
			reported = d
		}
	}
	for it := range a.q {
		report()
		_ = it.h.Handle(ctx, it.r)
	}
	report()
}

type queued struct {
	h slog.Handler
	r slog.Record
}

// Enabled reports whether the underlying handler handles level l.
func (a *AsyncHandler) Enabled(ctx context.Context, l slog.Level) bool { return a.h.Enabled(ctx, l) }

// Handle queues r without waiting; it drops r if the queue is full.
func (a *AsyncHandler) Handle(_ context.Context, r slog.Record) error { return a.enqueue(a.h, r) }

func (a *AsyncHandler) enqueue(h slog.Handler, r slog.Record) error {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		return nil
	}
	select {
	case a.q <- queued{h, r.Clone()}:
	default:
		a.dropped.Add(1)
	}
	return nil
}

// WithAttrs and WithGroup wrap the underlying handler's.
func (a *AsyncHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &asyncChild{a: a, h: a.h.WithAttrs(attrs)}
}

func (a *AsyncHandler) WithGroup(name string) slog.Handler {
	return &asyncChild{a: a, h: a.h.WithGroup(name)}
}

// Dropped returns how many records were dropped so far.
func (a *AsyncHandler) Dropped() uint64 { return a.dropped.Load() }

// Close stops taking records and waits until the queued ones are written or
// ctx ends.
func (a *AsyncHandler) Close(ctx context.Context) error {
	a.once.Do(func() {
		a.mu.Lock()
		a.closed = true
		close(a.q)
		a.mu.Unlock()
	})
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// asyncChild is a derived handler that shares its parent's queue.
type asyncChild struct {
	a *AsyncHandler
	h slog.Handler
}

func (c *asyncChild) Enabled(ctx context.Context, l slog.Level) bool { return c.h.Enabled(ctx, l) }
func (c *asyncChild) Handle(ctx context.Context, r slog.Record) error {
	return c.a.enqueue(c.h, r)
}
func (c *asyncChild) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &asyncChild{a: c.a, h: c.h.WithAttrs(attrs)}
}
func (c *asyncChild) WithGroup(name string) slog.Handler {
	return &asyncChild{a: c.a, h: c.h.WithGroup(name)}
}
