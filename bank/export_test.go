package bank

// PINSlots returns the PIN-check slots of l, for tests.
func PINSlots(l *Ledger) chan struct{} { return l.pinSlots }
