//go:build !linux && !darwin

package server_test

import "testing"

// raiseFileLimit does nothing where the open-file limit is not raised the
// POSIX way: the test then runs with the system's limit.
func raiseFileLimit(t *testing.T, n uint64) { t.Helper() }
