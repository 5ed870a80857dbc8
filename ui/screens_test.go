package ui

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"atm/netproto/client"
	"atm/netproto/wire"
	"atm/ui/i18n"

	tea "charm.land/bubbletea/v2"

	"atm/bank"
)

// Every screen is checked at the smallest supported size and a larger one,
// on dark and light backgrounds, in every language: the frame has the
// terminal's exact size, cuts no word, and shows what the person needs.
var sizes = []struct{ w, h int }{{80, 24}, {120, 40}}

// eachScreen runs fn in each language, size and background; w picks the
// texts expected in the language.
func eachScreen(t *testing.T, fn func(t *testing.T, m *Model, w words)) {
	for _, lang := range i18n.Langs {
		for _, sz := range sizes {
			for _, dark := range []bool{true, false} {
				name := fmt.Sprintf("%s/%dx%d/dark=%v", lang, sz.w, sz.h, dark)
				t.Run(name, func(t *testing.T) { fn(t, newTestModelIn(t, sz.w, sz.h, dark, lang), words{lang}) })
			}
		}
	}
}

// eachLayout runs fn in English in each size and background, for what does
// not depend on the language.
func eachLayout(t *testing.T, fn func(t *testing.T, m *Model)) {
	for _, sz := range sizes {
		for _, dark := range []bool{true, false} {
			name := fmt.Sprintf("%dx%d/dark=%v", sz.w, sz.h, dark)
			t.Run(name, func(t *testing.T) { fn(t, newTestModel(t, sz.w, sz.h, dark)) })
		}
	}
}

func TestConnectingScreen(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		out := screen(t, m)
		mustContain(t, out, "BANCO LAMPORT", "atm-test", "127.0.0.1:7667")
		mustContain(t, out, w.pick("Connecting to the bank", "Conectando ao banco", "LAMPORT CLOCK", "RELÓGIO DE LAMPORT",
			"no messages yet", "nenhuma mensagem ainda", "q quit", "q sair")...)
	})
}

func TestConnectFailedRetries(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		send(m, dialResultMsg{err: fmt.Errorf("connect to the bank at 127.0.0.1:7667: %w", syscall.ECONNREFUSED)})
		out := screen(t, m)
		mustContain(t, out, w.pick("The bank is not answering", "O banco não está respondendo", "Nothing is listening at", "Nenhum programa atende em",
			"Trying again in", "Nova tentativa em", "attempt 2", "tentativa 2", "r retry now", "r tentar agora")...)
		if m.client != nil || m.page != pageConnect {
			t.Errorf("after a failed dial: page %v, client %v", m.page, m.client)
		}
	})
}

// ATMs that find no bank do not all try again at the same instant: the wait
// grows and is drawn at random.
func TestConnectRetriesAreJittered(t *testing.T) {
	t.Parallel()
	seen := map[time.Duration]bool{}
	for range 20 {
		m := newTestModel(t, 80, 24, true)
		send(m, dialResultMsg{err: errors.New("connection refused")})
		d := m.connect.retryIn
		if d < 250*time.Millisecond || d > 500*time.Millisecond {
			t.Fatalf("first wait %v, want within [250ms, 500ms]", d)
		}
		seen[d] = true
		for range 5 {
			send(m, dialResultMsg{err: errors.New("connection refused")})
		}
		if d := m.connect.retryIn; d < 1500*time.Millisecond || d > 3*time.Second {
			t.Fatalf("sixth wait %v, want within [1.5s, 3s]", d)
		}
	}
	if len(seen) < 2 {
		t.Fatalf("20 ATMs all waited %v before trying again", seen)
	}
}

// Without --server, a failed dial starts a server inside the ATM and says so.
func TestConnectStartsEmbeddedServer(t *testing.T) {
	t.Parallel()
	eachScreen(t, connectStartsEmbeddedServer)
}

func connectStartsEmbeddedServer(t *testing.T, m *Model, w words) {
	m.cfg.Embedded = true
	var started string
	m.cfg.StartServer = func(addr, db string) (LocalServer, error) {
		started = addr
		return stubLocal{addr, db}, nil
	}
	_, cmd := m.Update(dialResultMsg{err: errors.New("connection refused")})
	if cmd == nil {
		t.Fatal("no command to start the server")
	}
	mustContain(t, screen(t, m), w.one("Starting a bank server inside", "Iniciando um servidor neste caixa"))
	send(m, cmd())
	if started != "127.0.0.1:7667" || m.embedded == nil {
		t.Fatalf("server started on %q, embedded %v", started, m.embedded)
	}
	connected(m)
	out := screen(t, m)
	mustContain(t, out, "127.0.0.1:7667")
	mustContain(t, out, w.pick("server in this ATM", "servidor neste caixa", "runs inside this ATM", "roda dentro deste caixa")...)
	mustContain(t, atmPanelWords(t, m), w.pick("No bank server was answering", "Nenhum servidor do banco respondia",
		"Other ATMs will use it", "Outros caixas vão usá-lo")...)
	m.embedded = nil // nothing to close
}

func TestConnectWithServerFlagNeverStartsOne(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	m.cfg.StartServer = func(addr, db string) (LocalServer, error) {
		t.Error("a server was started although --server was given")
		return nil, errors.New("no")
	}
	_, cmd := m.Update(dialResultMsg{err: errors.New("connection refused")})
	if msg := cmd(); msg != nil {
		if _, ok := msg.(embeddedResultMsg); ok {
			t.Error("a failed dial with --server led to starting a server")
		}
	}
}

func TestLoginScreen(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		connected(m)
		out := screen(t, m)
		mustContain(t, out, w.pick("Please log in", "Faça seu login", "Account number", "Número da conta", "PIN", "Senha",
			"Connected to bank", "Conectado a bank", "ctrl+c quit", "ctrl+c sair")...)
		typeText(m, "123")
		press(m, tea.KeyEnter)
		typeText(m, "9876")
		out = screen(t, m)
		mustContain(t, out, "› 123", "••••")
		mustNotContain(t, out, "9876")
	})
}

func TestLoginSubmitsAfterLocalChecks(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	connected(m)
	press(m, tea.KeyEnter)
	mustContain(t, screen(t, m), "Type your account number")
	typeText(m, "12a")
	mustContain(t, screen(t, m), "Only digits")
	press(m, tea.KeyEnter)
	typeText(m, "12")
	press(m, tea.KeyEnter)
	if m.busy != "" {
		t.Fatal("a 2-digit PIN was sent")
	}
	mustContain(t, screen(t, m), "The PIN has 4 to 12 digits")
	typeText(m, "34")
	press(m, tea.KeyEnter)
	if m.busy == "" {
		t.Fatal("a valid login was not sent")
	}
	mustContain(t, screen(t, m), "Checking your PIN")
}

func TestLoginErrors(t *testing.T) {
	t.Parallel()
	until := time.Date(2030, 1, 2, 15, 4, 5, 0, time.Local)
	cases := []struct {
		name  string
		err   error
		wants []string // English, Portuguese, English...
	}{
		{"unknown account", &wire.Error{Code: "account_not_found", Message: "account not found"}, []string{"There is no account 123", "Não existe a conta 123", "try again", "tente de novo"}},
		{"wrong PIN", &wire.Error{Code: "wrong_pin", AttemptsLeft: 2}, []string{"Wrong PIN: 2 attempts left", "Senha incorreta: restam 2 tentativas", "locked out", "bloqueado"}},
		{"last attempt", &wire.Error{Code: "wrong_pin", AttemptsLeft: 1}, []string{"Wrong PIN: 1 attempt left", "Senha incorreta: resta 1 tentativa"}},
		{"locked", &wire.Error{Code: "account_locked", Until: until}, []string{"Too many wrong PINs for account 123", "Muitas tentativas com senha incorreta na conta 123", "again at 15:04:05", "02/01/2030 às 15:04:05"}},
		{"too many", &wire.Error{Code: "too_many_attempts", Until: until}, []string{"Too many attempts", "Muitas tentativas neste terminal", "15:04:05", "15:04:05"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachScreen(t, func(t *testing.T, m *Model, w words) {
				connected(m)
				typeText(m, "123")
				press(m, tea.KeyEnter)
				typeText(m, "1111")
				press(m, tea.KeyEnter)
				send(m, loginResultMsg{account: "123", err: c.err})
				mustContain(t, atmPanelWords(t, m), w.pick(c.wants...)...)
				if m.sess.loggedIn() || m.page != pageLogin {
					t.Error("a failed login logged in")
				}
				if m.login.pin.Value() != "" {
					t.Error("the PIN field was not cleared")
				}
			})
		})
	}
}

func TestMenuScreen(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		loggedIn(m)
		out := screen(t, m)
		mustContain(t, out, "Ana Souza", "R$ 1.000,00")
		mustContain(t, out, w.pick("account 123", "conta 123", "1  Balance", "1  Saldo", "2  Deposit", "2  Depósito", "3  Withdraw", "3  Saque",
			"4  Transfer", "4  Transferência", "5  Statement", "5  Extrato", "6  Log out", "6  Sair", "1-6 shortcut", "1-6 atalho",
			"Space-time diagram", "Diagrama espaço-tempo")...)
		mustContain(t, out, w.one("› 1  Balance", "› 1  Saldo"))
		typeText(m, "jj")
		mustContain(t, screen(t, m), w.one("› 3  Withdraw", "› 3  Saque"))
		press(m, tea.KeyUp)
		mustContain(t, screen(t, m), w.one("› 2  Deposit", "› 2  Depósito"))
		typeText(m, "k")
		typeText(m, "k")
		mustContain(t, screen(t, m), w.one("› 6  Log out", "› 6  Sair"))
	})
}

func TestMenuShortcutsAndEnter(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	loggedIn(m)
	typeText(m, "2")
	if m.page != pageAmount || m.amount.op != opDeposit {
		t.Fatalf("2 opened page %v op %q", m.page, m.amount.op)
	}
	press(m, tea.KeyEscape)
	if m.page != pageMenu {
		t.Fatalf("esc went to page %v", m.page)
	}
	typeText(m, "jj") // from Deposit, where 2 left the cursor
	press(m, tea.KeyEnter)
	if m.page != pageTransfer {
		t.Fatalf("enter on Transfer opened page %v", m.page)
	}
	press(m, tea.KeyEscape)
	typeText(m, "q")
	if m.page != pageMenu {
		t.Fatal("q left the menu")
	}
}

func TestDepositForm(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		loggedIn(m)
		typeText(m, "2")
		out := screen(t, m)
		mustContain(t, out, "R$ ›", "1.234,56")
		mustContain(t, out, w.pick("Deposit", "Depósito", "Amount to deposit", "Valor a depositar", "esc back", "esc voltar")...)
		typeText(m, "R$ 1.234,5")
		mustContain(t, screen(t, m), "= R$ 1.234,50")
		press(m, tea.KeyBackspace, tea.KeyBackspace, tea.KeyBackspace, tea.KeyBackspace)
		typeText(m, "2345")
		out = screen(t, m)
		mustContain(t, out, "R$ 1.22345", w.one("ambiguous", "ambíguo"))
		if m.busy != "" {
			t.Fatal("busy before submitting")
		}
		press(m, tea.KeyEnter)
		if m.busy != "" {
			t.Fatal("an invalid amount was sent")
		}
	})
}

// TestAmountAboveTheBanksLimit: the limit the bank announced in its
// greeting is checked before anything is sent.
func TestAmountAboveTheBanksLimit(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	loggedIn(m)
	typeText(m, "2")
	typeText(m, "100.000,01")
	mustContain(t, screen(t, m), "over the limit of R$ 100.000,00")
	press(m, tea.KeyEnter)
	if m.busy != "" {
		t.Fatal("an amount above the limit was sent")
	}
	press(m, tea.KeyBackspace)
	press(m, tea.KeyBackspace)
	typeText(m, "00")
	mustContain(t, screen(t, m), "= R$ 100.000,00")
}

func TestWithdrawFormSubmits(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	loggedIn(m)
	typeText(m, "3")
	mustContain(t, screen(t, m), "Withdraw", "Amount to withdraw")
	press(m, tea.KeyEnter)
	mustContain(t, screen(t, m), "type an amount")
	typeText(m, "50,5")
	press(m, tea.KeyEnter)
	mustContain(t, screen(t, m), "Confirm the withdrawal", "Withdraw R$ 50,50 from your account?")
	confirmNow(m)
	mustContain(t, screen(t, m), "Sending the withdrawal…", "R$ 50,50")
	// While the request is in flight, keys other than ctrl+c are kept for
	// the next screen.
	press(m, tea.KeyEscape)
	if m.page != pageAmount {
		t.Fatal("esc acted while busy")
	}
}

func TestTransferFlow(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		loggedIn(m)
		typeText(m, "4")
		mustContain(t, screen(t, m), w.pick("Transfer", "Transferência", "Recipient's account", "Conta do favorecido", "holder's name", "nome do titular")...)
		typeText(m, "123")
		press(m, tea.KeyEnter)
		mustContain(t, screen(t, m), w.one("That is your own account", "Essa é a sua própria conta"))
		press(m, tea.KeyBackspace, tea.KeyBackspace, tea.KeyBackspace)
		typeText(m, "456")
		press(m, tea.KeyEnter)
		if m.busy == "" {
			t.Fatal("the lookup was not sent")
		}
		send(m, lookupResultMsg{account: "456", reply: client.Reply{Op: "lookup", Account: "456", Holder: "Bruno Lima"}})
		out := screen(t, m)
		mustContain(t, out, "456 · Bruno Lima")
		mustContain(t, out, w.pick("To", "Para", "Amount to transfer", "Valor a transferir")...)
		typeText(m, "50")
		press(m, tea.KeyEnter)
		out = screen(t, m)
		mustContain(t, out, "123 · Ana Souza", "456 · Bruno Lima", "R$ 50,00")
		mustContain(t, out, w.pick("Confirm the transfer", "Confirme a transferência", "Send R$ 50,00 to Bruno Lima?", "Enviar R$ 50,00 para Bruno Lima?",
			"y confirm", "s confirmar", "n back", "n voltar")...)
		readyConfirm(m)
		mustContain(t, atmPanelWords(t, m), w.one("Press y to confirm, or n to change the amount.", "Tecle s para confirmar, ou n para alterar o valor."))
		typeText(m, "n")
		if m.transfer.step != stepAmount {
			t.Fatal("n did not go back to the amount")
		}
		press(m, tea.KeyEnter)
		confirmNow(m)
		mustContain(t, screen(t, m), w.pick("Sending the transfer…", "Enviando a transferência…", "Send R$ 50,00 to Bruno Lima?", "Enviar R$ 50,00 para Bruno Lima?")...)
	})
}

func TestTransferUnknownRecipient(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, false)
	loggedIn(m)
	typeText(m, "4")
	typeText(m, "999")
	press(m, tea.KeyEnter)
	send(m, lookupResultMsg{account: "999", err: &wire.Error{Code: "account_not_found"}})
	mustContain(t, screen(t, m), "There is no account 999")
	if m.transfer.step != stepRecipient {
		t.Fatal("left the recipient step after a failed lookup")
	}
}

func TestReceiptScreen(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		loggedIn(m)
		send(m, clockEventsMsg{
			{Dir: "send", Type: "deposit", ReqID: "r1", Before: 6, After: 7, Peer: "bank"},
			{Dir: "recv", Type: "reply", Op: "deposit", ReqID: "r1", Before: 7, After: 42, Remote: 41, Peer: "bank"},
		})
		send(m, opResultMsg{op: opDeposit, amount: 5050, reply: client.Reply{ID: "r1", Op: "deposit", TS: 41, SentTS: 7, RecvTS: 42, ServerRecv: 39, ServerApply: 40, Balance: 105050}})
		out := screen(t, m)
		mustContain(t, out, "R$ 50,50", "R$ 1.050,50", "39", "40", "41", "max(7,41)+1 = 42")
		mustContain(t, out, w.pick("✓ Deposit done", "✓ Depósito realizado", "New balance", "Novo saldo",
			"Lamport timestamps", "Carimbos de tempo de Lamport", "sent by atm-test", "enviado por atm-test", "received by bank", "recebido por bank",
			"applied by bank", "aplicado por bank", "answered by bank", "respondido por bank", "received here", "recebido aqui",
			"enter back to menu", "enter voltar ao menu")...)
		// The clock panel shows the same step.
		mustContain(t, out, "L = 42", w.one("last from bank: 41", "último de bank: 41"), "↑ deposit", "6+1 = 7", "↓ deposit ✓")
		press(m, tea.KeyEnter)
		if m.page != pageMenu {
			t.Fatal("enter did not go back to the menu")
		}
	})
}

func TestReceiptDuplicate(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	loggedIn(m)
	send(m, opResultMsg{op: opWithdraw, amount: 1000, reply: client.Reply{ID: "r2", Balance: 99000, Duplicate: true}})
	mustContain(t, screen(t, m), "Withdrawal done", "already applied this request", "not applied again")
}

func TestRefusedReceipt(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		loggedIn(m)
		send(m, clockEventsMsg{
			{Dir: "send", Type: "withdraw", ReqID: "r9", Before: 10, After: 11},
			{Dir: "recv", Type: "error", Op: "withdraw", ReqID: "r9", Before: 11, After: 16, Remote: 15},
		})
		send(m, opResultMsg{op: opWithdraw, amount: 500000, err: &wire.Error{Code: "insufficient_funds", Message: "insufficient funds", ID: "r9", TS: 15, RecvTS: 13, ApplyTS: 14}})
		out := screen(t, m)
		mustContain(t, out, "R$ 1.000,00", "11", "13", "14", "15", "max(11,15)+1 = 16", "↓ withdraw ✗")
		mustContain(t, out, w.pick("✗ Withdrawal refused", "✗ Saque recusado", "Insufficient funds for R$ 5.000,00", "Saldo insuficiente para R$ 5.000,00",
			"sent by atm-test", "enviado por atm-test", "received by bank", "recebido por bank", "refused by bank", "recusado por bank",
			"answered by bank", "respondido por bank")...)
		if m.sess.balance != 100000 {
			t.Errorf("a refused withdrawal changed the balance to %d", m.sess.balance)
		}
	})
}

func TestBalanceReceipt(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		loggedIn(m)
		typeText(m, "1")
		if m.busy == "" {
			t.Fatal("balance was not asked")
		}
		mustContain(t, screen(t, m), w.one("Asking the bank for your balance…", "Consultando seu saldo no banco…"))
		send(m, opResultMsg{op: "balance", reply: client.Reply{Balance: 123456}})
		mustContain(t, screen(t, m), w.one("✓ Balance", "✓ Saldo"), "R$ 1.234,56")
	})
}

func TestStatementScreen(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		loggedIn(m)
		typeText(m, "5")
		mustContain(t, screen(t, m), w.pick("Statement", "Extrato", "Loading", "Carregando")...)
		var entries []wire.Entry
		entries = append(entries,
			wire.Entry{TS: 90, Kind: wire.KindTransfer, Outcome: "ok", Account: "456", To: "123", Amount: 2500, Balance: 97500, ToBalance: 102500},
			wire.Entry{TS: 80, Kind: wire.KindWithdraw, Outcome: "insufficient_funds", Account: "123", Amount: 900000, Balance: 100000},
			wire.Entry{TS: 70, Kind: wire.KindTransfer, Outcome: "ok", Account: "123", To: "456", Amount: 5000, Balance: 100000, ToBalance: 105000},
			wire.Entry{TS: 60, Kind: wire.KindDeposit, Outcome: "ok", Account: "123", Amount: 5050, Balance: 105000},
		)
		for i := range 30 {
			entries = append(entries, wire.Entry{TS: uint64(50 - i), Kind: string(bank.KindBalance), Outcome: "ok", Account: "123", Balance: 99950})
		}
		send(m, statementResultMsg{reply: client.Reply{Entries: entries, Next: 20, Balance: 102500}})
		out := screen(t, m)
		mustContain(t, out, "R$ 1.025,00", "+25,00", "1.025,00", "-50,00", "+50,50")
		mustContain(t, out, w.pick("from 456", "de 456", "✗ withdrawal", "✗ saque", "to 456", "para 456", "deposit", "depósito",
			"entries 1–", "lançamentos 1–", "more below", "há mais abaixo", "Entry", "Lançamento", "Amount", "Valor", "Balance", "Saldo")...)
		// Scrolling to the end asks for the next page.
		for range 40 {
			press(m, tea.KeyDown)
		}
		if !m.statement.loading {
			t.Error("reaching the last row did not load older entries")
		}
		mustContain(t, screen(t, m), w.one("–34, more below · loading older…", "–34 · carregando anteriores…"))
		press(m, tea.KeyEscape)
		if m.page != pageMenu {
			t.Error("esc did not go back to the menu")
		}
	})
}

func TestStatementEmpty(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	loggedIn(m)
	typeText(m, "5")
	send(m, statementResultMsg{reply: client.Reply{}})
	mustContain(t, screen(t, m), "No entries yet")
}

func TestPushArrives(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		loggedIn(m)
		gen := m.gen
		send(m, clockEventsMsg{{Dir: "recv", Type: "push", Before: 20, After: 62, Remote: 61, Peer: "bank"}})
		send(m, pushMsg{gen: gen, push: client.Push{Kind: wire.PushTransferIn, Account: "123", From: "456", FromHolder: "Bruno Lima", Amount: 2500, Balance: 102500, HasBalance: true, TS: 61, ApplyTS: 59, RecvTS: 62}})
		out := screen(t, m)
		mustContain(t, out, "R$ 1.025,00", "↓ push", "max(20,61)+1 = 62")
		mustContain(t, out, w.pick("Money arrived: +R$ 25,00", "Dinheiro recebido: +R$ 25,00", "from 456 · Bruno Lima", "de 456 · Bruno Lima", "here L=62", "aqui L=62")...)
		if m.sess.balance != 102500 {
			t.Errorf("balance %d after the push, want 102500", m.sess.balance)
		}
		// A push from an older connection is ignored.
		send(m, pushMsg{gen: gen - 1, push: client.Push{Account: "123", Balance: 1, HasBalance: true}})
		if m.sess.balance != 102500 {
			t.Error("a stale push changed the balance")
		}
	})
}

func TestConnectionLostThenBackToLogin(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		loggedIn(m)
		gen := m.gen
		send(m, statusMsg{gen: gen, status: client.ConnStatus{State: client.StateLost, Err: errors.New("EOF")}})
		send(m, statusMsg{gen: gen, status: client.ConnStatus{State: client.StateReconnecting, Attempt: 2, Delay: 200 * time.Millisecond}})
		out := screen(t, m)
		mustContain(t, out, w.pick("Connection to the bank lost", "Conexão com o banco perdida", "Offline — reconnecting (attempt 2, next in 0.2 s)",
			"Sem conexão — reconectando (tentativa 2, próxima em 0,2 s)", "r retry now", "r tentar agora")...)
		send(m, statusMsg{gen: gen, status: client.ConnStatus{State: client.StateReconnected}})
		mustContain(t, screen(t, m), w.pick("Reconnected", "Reconectado")...)
		mustContain(t, atmPanelWords(t, m), w.pick("Please log in", "Faça seu login", "For your safety", "Para sua segurança")...)
		if m.sess.loggedIn() || m.page != pageLogin {
			t.Error("still in the session after the connection came back")
		}
	})
}

// A request in flight when the connection drops is resent by the client
// with the same id; its receipt says so, and then the ATM asks for a new
// login.
func TestConnectionLostDuringRequest(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	loggedIn(m)
	typeText(m, "2")
	typeText(m, "50")
	press(m, tea.KeyEnter)
	confirmNow(m)
	gen := m.gen
	send(m, statusMsg{gen: gen, status: client.ConnStatus{State: client.StateLost}})
	send(m, statusMsg{gen: gen, status: client.ConnStatus{State: client.StateReconnected}})
	if m.page != pageAmount || m.busy == "" {
		t.Fatalf("page %v busy %q: the pending deposit was abandoned", m.page, m.busy)
	}
	send(m, opResultMsg{op: opDeposit, amount: 5000, reply: client.Reply{ID: "x", Balance: 105000, Duplicate: true}})
	out := screen(t, m)
	mustContain(t, out, "Deposit done", "not applied again", "applied at most once")
	press(m, tea.KeyEnter)
	if m.page != pageLogin || m.sess.loggedIn() {
		t.Fatal("after the receipt the ATM did not ask for a new login")
	}
}

func TestClientClosedGoesBackToConnecting(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	loggedIn(m)
	send(m, statusMsg{gen: m.gen, closed: true})
	if m.page != pageConnect || m.client != nil {
		t.Fatal("a closed client did not lead back to connecting")
	}
	mustContain(t, screen(t, m), "Disconnected from the bank", "Connecting to the bank")
}

func TestLogout(t *testing.T) {
	t.Parallel()
	eachScreen(t, func(t *testing.T, m *Model, w words) {
		loggedIn(m)
		typeText(m, "6")
		out := screen(t, m)
		mustContain(t, out, w.pick("Logged out. Goodbye, Ana!", "Sessão encerrada. Até logo, Ana!", "Please log in", "Faça seu login")...)
		mustNotContain(t, out, "Ana Souza")
	})
}

func TestTooSmall(t *testing.T) {
	t.Parallel()
	for _, sz := range []struct{ w, h int }{{79, 24}, {80, 23}, {40, 10}, {20, 5}} {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			m := newTestModel(t, sz.w, sz.h, true)
			loggedIn(m)
			out := screen(t, m)
			flat := strings.Join(strings.Fields(out), " ")
			mustContain(t, flat, "too small", fmt.Sprintf("have %d×%d", sz.w, sz.h))
			if sz.w >= 40 {
				mustContain(t, flat, "need 80×24")
			}
			mustNotContain(t, out, "LAMPORT CLOCK")
		})
	}
	// Growing the window brings the screen back.
	m := newTestModel(t, 60, 20, true)
	loggedIn(m)
	send(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	mustContain(t, screen(t, m), "What would you like to do?")
}

func TestClockPanelTimeline(t *testing.T) {
	t.Parallel()
	m := newTestModel(t, 80, 24, true)
	connected(m)
	var evs clockEventsMsg
	var clk uint64
	for i := range 20 {
		evs = append(evs, client.ClockEvent{Dir: "send", Type: "balance", ReqID: fmt.Sprint(i), Before: clk, After: clk + 1})
		clk++
		remote := clk + 3
		evs = append(evs, client.ClockEvent{Dir: "recv", Type: "reply", Op: "balance", ReqID: fmt.Sprint(i), Before: clk, After: remote + 1, Remote: remote})
		clk = remote + 1
	}
	send(m, evs)
	out := screen(t, m)
	// The newest entries are shown, the oldest scrolled away.
	mustContain(t, out, fmt.Sprintf("L = %d", clk), fmt.Sprintf("max(%d,%d)+1=%d", clk-4, clk-1, clk), "▶ ↓ balance ✓")
	mustNotContain(t, out, "0+1 = 1 ")
	if !m.clockPanel.flash {
		t.Error("the clock is not highlighted after a change")
	}
	send(m, clockFlashOffMsg{id: m.clockPanel.flashID})
	if m.clockPanel.flash {
		t.Error("the highlight did not end")
	}
}

func TestBigDigits(t *testing.T) {
	t.Parallel()
	got := renderBig(1234567890, 40)
	if len(got) != 3 || len([]rune(got[0])) != 10*4-1 {
		t.Fatalf("renderBig = %q", got)
	}
	// Too wide for the panel: plain digits.
	if got := renderBig(1234567890, 20); got[1] != "1234567890" {
		t.Fatalf("narrow renderBig = %q", got)
	}
}

// In Portuguese a money operation is confirmed with s (sim), the key the
// screen names; y works too. English confirms with y only.
func TestConfirmKeyOfTheLanguage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		lang    i18n.Lang
		key     string
		confirm bool
	}{
		{i18n.Portuguese, "s", true},
		{i18n.Portuguese, "y", true},
		{i18n.English, "y", true},
		{i18n.English, "s", false},
	}
	for _, c := range cases {
		t.Run(c.lang.String()+"/"+c.key, func(t *testing.T) {
			m := newTestModelIn(t, 80, 24, true, c.lang)
			loggedIn(m)
			typeText(m, "2")
			typeText(m, "50")
			press(m, tea.KeyEnter)
			readyConfirm(m)
			typeText(m, c.key)
			if sent := m.busy != ""; sent != c.confirm {
				t.Fatalf("%s in %s: deposit sent %v, want %v", c.key, c.lang, sent, c.confirm)
			}
			if c.confirm {
				mustContain(t, screen(t, m), words{c.lang}.one("Sending the deposit…", "Enviando o depósito…"))
			}
		})
	}
}

// A terminal too small says so in the person's language.
func TestTooSmallInPortuguese(t *testing.T) {
	t.Parallel()
	m := newTestModelIn(t, 60, 20, true, i18n.Portuguese)
	flat := strings.Join(strings.Fields(screen(t, m)), " ")
	mustContain(t, flat, "Terminal pequeno demais: são necessários 80×24, há 60×20.", "Aumente a janela ou tecle q para sair.")
}
