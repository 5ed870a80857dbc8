package bank

import (
	"os"
	"path/filepath"
)

// DefaultPath returns the database file used when none is given:
// $XDG_DATA_HOME/atm/bank.db, or ~/.local/share/atm/bank.db. The directory
// is not created.
func DefaultPath() string {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return filepath.Join(os.TempDir(), "atm", "bank.db")
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "atm", "bank.db")
}
