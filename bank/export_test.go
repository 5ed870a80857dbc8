package bank

// PINSlots returns the PIN-check slots of l, for tests.
func PINSlots(l *Ledger) chan struct{} { return l.pinSlots }

// SetFault makes f run once a money operation has written all it changes
// to its view, until the test ends.
func SetFault(t interface{ Cleanup(func()) }, f func(*Op)) {
	fault.Store(&f)
	t.Cleanup(func() { fault.Store(nil) })
}
