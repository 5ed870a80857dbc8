package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tokenFile is where a bank's operator token is kept: beside its database,
// readable by its owner only, so that `atm watch` and `atm log --server`
// on the same machine find it without a flag.
func tokenFile(dbPath string) string {
	return filepath.Join(filepath.Dir(dbPath), "operator.token")
}

// operatorToken returns the token a server on dbPath uses: the one given,
// else the one kept beside the database, else a new one written there
// (mode 0600).
func operatorToken(dbPath, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	path := tokenFile(dbPath)
	if tok, err := readToken(path); err == nil {
		return tok, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	tok := strings.ToLower(rand.Text())
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create the directory of %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the operator token in %s: %w", path, err)
	}
	return tok, nil
}

// readToken reads a token file.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return tok, nil
}

// parseDelay reads --delay: "MIN-MAX" (e.g. 50ms-300ms) or one duration.
func parseDelay(s string) (lo, hi time.Duration, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	if lo, err = time.ParseDuration(strings.TrimSpace(a)); err == nil {
		hi, err = time.ParseDuration(strings.TrimSpace(b))
	}
	if err != nil || lo < 0 || hi < lo || hi > time.Minute {
		return 0, 0, fmt.Errorf("--delay must be MIN-MAX durations such as 50ms-300ms (at most 1m), not %q", s)
	}
	return lo, hi, nil
}
