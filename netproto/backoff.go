package netproto

import (
	"math/rand/v2"
	"time"
)

// Backoff hands out the waits between retries: exponential from Min to Max,
// each drawn at random from the upper half of its step ("equal jitter"), so
// that clients cut off at the same instant do not all come back at once.
type Backoff struct {
	Min, Max time.Duration
	step     time.Duration
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	if b.step < b.Min {
		b.step = b.Min
	} else {
		b.step = min(2*b.step, b.Max)
	}
	half := b.step / 2
	if half <= 0 {
		return b.step
	}
	return half + rand.N(b.step-half+1)
}

// Reset starts the sequence over.
func (b *Backoff) Reset() { b.step = 0 }
