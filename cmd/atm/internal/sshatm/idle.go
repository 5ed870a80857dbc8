package sshatm

import (
	"io"
	"time"
)

// idleInput is a session's input that calls fire once nothing has been
// read from it for a while: what the person types counts, what the ATM
// draws does not (the clock and spinner redraw on their own).
type idleInput struct {
	r     io.Reader
	after time.Duration
	timer *time.Timer // nil: never idle
}

func newIdleInput(r io.Reader, after time.Duration, fire func()) *idleInput {
	in := &idleInput{r: r, after: after}
	if after > 0 {
		in.timer = time.AfterFunc(after, fire)
	}
	return in
}

func (in *idleInput) Read(p []byte) (int, error) {
	n, err := in.r.Read(p)
	if n > 0 && in.timer != nil {
		in.timer.Reset(in.after)
	}
	return n, err
}

// stop disarms the timer.
func (in *idleInput) stop() {
	if in.timer != nil {
		in.timer.Stop()
	}
}
