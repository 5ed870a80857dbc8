package main

import (
	"os"
	"path/filepath"
)

// defaultDBPath is where the bank's database lives unless told otherwise:
// $XDG_DATA_HOME/atm/bank.db, else ~/.local/share/atm/bank.db, else bank.db
// in the working directory when no home directory is known. The directory
// may not exist yet.
func defaultDBPath() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "atm", "bank.db")
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".local", "share", "atm", "bank.db")
	}
	return "bank.db"
}
