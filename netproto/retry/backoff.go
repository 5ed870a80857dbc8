// Package retry spaces out the attempts to reach a peer that is not
// answering: the ATM's reconnections and the server's accept loop.
package retry

import (
	"math/rand/v2"
	"time"
)

// Backoff computes the waits between attempts to reach a peer: exponential
// growth from Min doubling up to Max, each wait drawn uniformly at random
// from [d/2, d] where d is the current step ("equal jitter"). The jitter
// keeps many clients that lost the same server at the same instant from
// coming back in lockstep, while the lower half-bound keeps each one from
// retrying too eagerly.
//
// The zero value is not usable: set Min (and Max, which is raised to Min
// when smaller). A Backoff is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	step     time.Duration // the ceiling of the next wait; 0: Min
}

// Next returns the wait before the next attempt and moves on to the
// following step.
func (b *Backoff) Next() time.Duration {
	lo := max(b.Min, 1)
	hi := max(b.Max, lo)
	d := b.step
	if d < lo {
		d = lo
	}
	d = min(d, hi)
	if d > hi/2 {
		b.step = hi
	} else {
		b.step = d * 2
	}
	half := d / 2
	return d - half + rand.N(half+1)
}

// Reset starts over from Min, after an attempt succeeded.
func (b *Backoff) Reset() { b.step = 0 }
