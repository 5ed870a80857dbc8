package ui

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An ATM given two servers of one bank (--server a,b) is on the first; it
// stops, and a server on the same database starts at the second address:
// the ATM fails over to it, says so, and its title bar shows the new
// address.
func TestEndToEndFailoverToAnotherServer(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "bank.db")
	addrA, addrB := freeAddr(t), freeAddr(t)
	srvA, err := startTestServer(addrA, db)
	if err != nil {
		t.Fatal(err)
	}
	a := startATMConfig(t, Config{Addr: addrA + "," + addrB, ProcessID: "atm-fail", RequestTimeout: 10 * time.Second})
	title := func(s string) string { return strings.SplitN(s, "\n", 2)[0] }
	s := a.waitFor("Please log in", "bank @ "+addrA)
	if strings.Contains(title(s), addrB) {
		t.Errorf("the title names the second server before any failover: %q", title(s))
	}
	a.typeKeys("789\r1234\r")
	a.waitFor("Carla Dias", "What would you like to do?")

	if err := srvA.Close(); err != nil {
		t.Fatalf("stop server A: %v", err)
	}
	a.waitFor("Connection to the bank lost")
	srvB, err := startTestServer(addrB, db)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srvB.Close(); err != nil {
			t.Errorf("stop server B: %v", err)
		}
	}()
	s = a.waitFor("Reconnected to the bank, on its server at "+addrB, "bank @ "+addrB, "Please log in")
	if strings.Contains(title(s), addrA) {
		t.Errorf("the title still names server A after the failover: %q", title(s))
	}
	a.typeKeys("789\r1234\r")
	a.waitFor("Carla Dias", "R$ 1.000,00", "bank @ "+addrB)
	a.quit()
}
