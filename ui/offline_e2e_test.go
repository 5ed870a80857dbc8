package ui

import (
	"strings"
	"testing"
)

// The server stops mid-session: the ATM says it is offline on every screen,
// refuses requests instead of keeping them for later, and when the server
// is back (r retries at once) the money is where it was: nothing refused
// was sent. The timeline labels the client's own messages of the reconnect.
func TestEndToEndOffline(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	db := t.TempDir() + "/bank.db"
	srv, err := startTestServer(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	a := startATM(t, "atm-off1", addr)
	a.waitFor("Please log in")
	a.typeKeys("789\r1234\r")
	a.waitFor("Carla Dias", "What would you like to do?", "R$ 1.000,00")

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	a.waitFor("Offline — reconnecting (attempt", "r retry now")
	a.typeKeys("1") // balance
	s := a.waitFor("unreachable", "not sent")
	if strings.Contains(s, "Asking the bank") {
		t.Fatalf("the balance request went out while offline:\n%s", s)
	}
	a.typeKeys("\x1b[B\x1b[B\r") // down to Withdraw
	a.waitFor("Amount to withdraw")
	a.typeKeys("50\r")
	a.waitFor("Confirm the withdrawal", "Press y to confirm")
	a.typeKeys("y")
	s = a.waitFor("Confirm the withdrawal", "not sent", "Offline")
	if strings.Contains(s, "Withdrawing") {
		t.Fatalf("the withdrawal went out while offline:\n%s", s)
	}

	srv, err = startTestServer(addr, db)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a.typeKeys("r")
	s = a.waitFor("Reconnected to the bank", "Please log in", "reconnected · session restored")
	if strings.Contains(s, "Offline") {
		t.Fatalf("still offline after the reconnect:\n%s", s)
	}
	a.typeKeys("789\r1234\r")
	a.waitFor("Carla Dias", "What would you like to do?", "R$ 1.000,00") // nothing was withdrawn
	a.quit()
}
