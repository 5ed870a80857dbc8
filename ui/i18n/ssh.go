package i18n

// The lines the ATM over SSH writes on a person's terminal outside the
// ATM's screen: why there is no ATM for them, and the goodbye after it.
var (
	SSHNeedsTerminal = def("ssh.needsterminal", "The ATM needs a terminal: connect with ssh -t.", "O caixa precisa de um terminal: conecte-se com ssh -t.")
	SSHNoCommand     = def("ssh.nocommand", "This server runs the ATM only: connect without a command.", "Este servidor só executa o caixa: conecte-se sem um comando.")
	SSHAllInUse      = defPlural("ssh.allinuse", 1,
		cases("Sorry, this bank has %d ATM and it is in use; try again later.", "Sorry, all %d ATMs of this bank are in use; try again later."),
		cases("Desculpe, este banco tem %d caixa e ele está em uso; tente de novo mais tarde.", "Desculpe, todos os %d caixas deste banco estão em uso; tente de novo mais tarde."))
	SSHRefusedClosing = def("ssh.refused.closing", "Sorry, the bank is closing; try again later.", "Desculpe, o banco está fechando; tente de novo mais tarde.")
	// SSHClosing: the bank's name.
	SSHClosing = def("ssh.closing", "%s is closing: this ATM has logged out. Goodbye!", "O %s está fechando: este caixa encerrou a sessão. Até logo!")
	// SSHFault: the ATM stopped on a fault of the server (a panic, logged).
	SSHFault = def("ssh.fault", "This ATM stopped on a fault of the server. Connect again for a new one.", "Este caixa parou por uma falha do servidor. Conecte-se de novo para abrir outro.")
	// SSHIdle: how long without a key.
	SSHIdle = def("ssh.idle", "No key for %s: this ATM has logged out. Goodbye!", "Nenhuma tecla em %s: este caixa encerrou a sessão. Até logo!")
)
