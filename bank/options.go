package bank

import (
	"time"

	"atm/bank/money"

	"golang.org/x/crypto/bcrypt"
)

// Options configure a ledger, whatever its store. The zero value gives the
// documented defaults; each store adds options of its own.
type Options struct {
	ProcessID     string        // the server's process id in events; default "bank"
	MaxAmount     money.Cents   // per-operation limit; default 10_000_000 (R$ 100.000,00)
	LockAfter     int           // wrong PINs in a row from one source before it is locked out of the account; default 3
	LockFor       time.Duration // how long a source's lockout lasts; default 15 minutes
	ThrottleAfter int           // wrong PINs in a row on an account, any sources, before it is throttled; default 10
	ThrottleEvery time.Duration // a throttled account takes one attempt per ThrottleEvery; default 1 minute
	// RememberRequests is the window of remembered request ids; each
	// store states what it counts and its default.
	RememberRequests int
	PINCost          int  // bcrypt cost for new PINs; default bcrypt.DefaultCost
	NoDefaults       bool // do not create the default accounts in an empty store
	Now              func() time.Time
	// OnEvent, if set, is called for each event once it is durable, in
	// timestamp order within a transaction, before the operations of that
	// transaction are answered. It must not block for long, and must not
	// call the ledger.
	OnEvent func(Event)
	// CheckpointEvery, when above 0, writes a checkpoint (see
	// Ledger.Checkpoint) in the background every time this ledger has
	// logged about that many events since it opened or since its last
	// one; 0 writes none but those asked for.
	CheckpointEvery int
}

// WithDefaults fills the zero fields of o with the documented defaults
// (RememberRequests is the store's).
func (o Options) WithDefaults() Options {
	if o.ProcessID == "" {
		o.ProcessID = "bank"
	}
	if o.MaxAmount <= 0 {
		o.MaxAmount = 10_000_000
	}
	lk := o.Lockout().WithDefaults()
	o.LockAfter, o.LockFor, o.ThrottleAfter, o.ThrottleEvery = lk.LockAfter, lk.LockFor, lk.ThrottleAfter, lk.ThrottleEvery
	if o.PINCost == 0 {
		o.PINCost = bcrypt.DefaultCost
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Lockout is the wrong-PIN policy o sets.
func (o Options) Lockout() Lockout {
	return Lockout{LockAfter: o.LockAfter, LockFor: o.LockFor, ThrottleAfter: o.ThrottleAfter, ThrottleEvery: o.ThrottleEvery}
}

// DefaultAccounts are created in an empty store unless Options.NoDefaults.
var DefaultAccounts = []struct {
	ID, Name, PIN string
	Opening       money.Cents
}{
	{"123", "Ana Souza", "1234", 100_000},
	{"456", "Bruno Lima", "1234", 100_000},
	{"789", "Carla Dias", "1234", 100_000},
}
