package bank

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"atm/bank/outcome"
)

// Lockout is the wrong-PIN policy every ledger applies to an Account's
// failure counts (see the package comment): after LockAfter wrong PINs in
// a row from one source, that source is locked out of the account for
// LockFor; after ThrottleAfter in a row on the account from any sources,
// the account takes one attempt per ThrottleEvery. The fields must be
// positive; ledgers fill them with WithDefaults.
type Lockout struct {
	LockAfter     int
	LockFor       time.Duration
	ThrottleAfter int
	ThrottleEvery time.Duration
}

// WithDefaults fills the fields of l that are not positive with the
// documented defaults: locked after 3 wrong PINs for 15 minutes, and
// throttled to one attempt a minute after 10.
func (l Lockout) WithDefaults() Lockout {
	if l.LockAfter <= 0 {
		l.LockAfter = 3
	}
	if l.LockFor <= 0 {
		l.LockFor = 15 * time.Minute
	}
	if l.ThrottleAfter <= 0 {
		l.ThrottleAfter = 10
	}
	if l.ThrottleEvery <= 0 {
		l.ThrottleEvery = time.Minute
	}
	return l
}

// LoginSource is who is trying to log in, for counting wrong PINs:
// m.Source, or m.Client when it is empty.
func LoginSource(m Meta) string {
	if m.Source != "" {
		return m.Source
	}
	return m.Client
}

// Refusal returns the *outcome.LockedError that refuses a login attempt on
// a from src at now without looking at the PIN, or nil: src is locked out
// of a, or a is throttled and the next attempt is not due yet.
func (p Lockout) Refusal(a *Account, src string, now time.Time) error {
	if s := a.source(src); s != nil && now.Before(s.LockedUntil) {
		return &outcome.LockedError{Until: s.LockedUntil}
	}
	if now.Before(a.LockedUntil) {
		return &outcome.LockedError{Until: a.LockedUntil, Every: p.ThrottleEvery}
	}
	return nil
}

// WrongPIN counts a wrong PIN from src on a at now. It returns, when a
// lock starts, the lock event's detail, and the refusal: a
// *outcome.LockedError, or a *outcome.WrongPINError with the attempts src
// has left.
func (p Lockout) WrongPIN(a *Account, src string, now time.Time) (string, error) {
	s := a.touchSource(src)
	s.FailedPINs++
	a.FailedPINs++
	var refusal error
	var notes []string
	if s.FailedPINs >= p.LockAfter {
		s.FailedPINs = 0
		s.LockedUntil = now.Add(p.LockFor)
		refusal = &outcome.LockedError{Until: s.LockedUntil}
		notes = append(notes, fmt.Sprintf("%s locked out until %s after %d wrong PINs in a row",
			src, s.LockedUntil.UTC().Format(time.RFC3339), p.LockAfter))
	}
	if a.FailedPINs >= p.ThrottleAfter {
		a.LockedUntil = now.Add(p.ThrottleEvery)
		if refusal == nil {
			refusal = &outcome.LockedError{Until: a.LockedUntil, Every: p.ThrottleEvery}
		}
		notes = append(notes, fmt.Sprintf("account throttled after %d wrong PINs in a row: next attempt at %s",
			a.FailedPINs, a.LockedUntil.UTC().Format(time.RFC3339)))
	}
	if refusal == nil {
		refusal = &outcome.WrongPINError{AttemptsLeft: p.LockAfter - s.FailedPINs}
	}
	return strings.Join(notes, "; "), refusal
}

// source returns the failures of src on a, nil when none are remembered.
func (a *Account) source(src string) *SourceFailures {
	for i := range a.Sources {
		if a.Sources[i].Source == src {
			return &a.Sources[i]
		}
	}
	return nil
}

// touchSource returns the failures of src on a, moved to the end as the
// most recent (added if new, forgetting the oldest beyond MaxSources).
func (a *Account) touchSource(src string) *SourceFailures {
	s := SourceFailures{Source: src}
	if i := slices.IndexFunc(a.Sources, func(f SourceFailures) bool { return f.Source == src }); i >= 0 {
		s = a.Sources[i]
		a.Sources = slices.Delete(a.Sources, i, i+1)
	}
	a.Sources = append(a.Sources, s)
	if n := len(a.Sources) - MaxSources; n > 0 {
		a.Sources = slices.Delete(a.Sources, 0, n)
	}
	return &a.Sources[len(a.Sources)-1]
}

// ForgetSource clears src's wrong PINs on a after it logged in; it reports
// whether there were any.
func (a *Account) ForgetSource(src string) bool {
	n := len(a.Sources)
	a.Sources = slices.DeleteFunc(a.Sources, func(f SourceFailures) bool { return f.Source == src })
	if len(a.Sources) == 0 {
		a.Sources = nil
	}
	return len(a.Sources) != n
}
