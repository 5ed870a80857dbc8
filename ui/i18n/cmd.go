package i18n

// The atm command's usage, flag help and the errors it says to a person.
var (
	CmdUsage      = def("cmd.usage", "usage: atm [command] [flags]\n\ncommands:", "uso: atm [comando] [opções]\n\ncomandos:")
	CmdNone       = def("cmd.none", "(none)", "(nenhum)")
	CmdMore       = def("cmd.more", "\nRun 'atm COMMAND -h' for a command's flags.", "\nRode 'atm COMANDO -h' para ver as opções de um comando.")
	CmdUnknown    = def("cmd.unknown", "atm: unknown command %q", "atm: comando desconhecido %q")
	CmdUnexpected = def("cmd.unexpected", "%s: unexpected argument %q", "%s: argumento inesperado %q")
	// CmdLangFlag: the word in backquotes names the flag's value in the
	// flag list ("-lang pt-BR").
	CmdLangFlag       = def("cmd.lang.flag", "language of the screens: `pt-BR` or en (default from $LC_ALL, $LC_MESSAGES or $LANG; English otherwise)", "idioma das telas: `pt-BR` ou en (padrão: $LC_ALL, $LC_MESSAGES ou $LANG; senão inglês)")
	SumAccounts       = def("cmd.sum.accounts", "list or add accounts (server not running)", "lista ou cria contas (com o servidor parado)")
	SumATM            = def("cmd.sum.atm", "the ATM, full screen (default; --server HOST:PORT, else a local bank started if needed)", "o caixa eletrônico, em tela cheia (padrão; --server HOST:PORTA, senão um banco local iniciado se preciso)")
	SumBench          = def("cmd.sum.bench", "load-test a bank server and report throughput and latency", "testa a carga de um servidor do banco e mostra vazão e latência")
	SumArchive        = def("cmd.sum.archive", "move the oldest events of the log into an archive directory", "move os eventos mais antigos do registro para um diretório de arquivo")
	SumCompact        = def("cmd.sum.compact", "copy a database file without its free pages, to shrink it after archiving", "copia um arquivo de banco sem as páginas livres, para encolhê-lo depois de arquivar")
	SumCheckpoint     = def("cmd.sum.checkpoint", "record the bank's state in its log, so that verify starts from there (server not running, or --etcd)", "registra o estado do banco no seu registro de eventos, para que o verify comece dali (com o servidor parado, ou --etcd)")
	SumLog            = def("cmd.sum.log", "print the event log in Lamport order", "mostra o registro de eventos na ordem de Lamport")
	SumServe          = def("cmd.sum.serve", "run the bank server (headless)", "roda o servidor do banco (sem tela)")
	SumVerify         = def("cmd.sum.verify", "replay the event log and check balances and conservation", "refaz o registro de eventos e confere saldos e conservação")
	SumWatch          = def("cmd.sum.watch", "a live space-time diagram of every process of the bank (--server, --operator-token)", "um diagrama espaço-tempo ao vivo de todos os processos do banco (--server, --operator-token)")
	ATMUsage          = def("cmd.atm.usage", "usage: atm [--server [tls://]HOST:PORT[,...]] [--ca FILE] [--db PATH] [--lang pt-BR|en]", "uso: atm [--server [tls://]HOST:PORTA[,...]] [--ca ARQUIVO] [--db CAMINHO] [--lang pt-BR|en]")
	ATMAbout          = def("cmd.atm.about", "\nThe ATM. Keys are shown at the bottom of every screen; q or ctrl+c quits.", "\nO caixa eletrônico. As teclas aparecem no rodapé de cada tela; q ou ctrl+c sai.")
	ATMOthers         = def("cmd.atm.others", "\nRun 'atm help' for the other commands.", "\nRode 'atm help' para ver os outros comandos.")
	ATMServerFlag     = def("cmd.atm.server", "bank server HOST:PORT (tls://HOST:PORT over TLS), or several servers of one bank HOST:PORT,HOST:PORT,... to fail over between (default %s; without this flag, a server is started inside the ATM when none answers there)", "servidor do banco HOST:PORTA (tls://HOST:PORTA com TLS), ou vários servidores de um mesmo banco HOST:PORTA,HOST:PORTA,... para alternar entre eles (padrão %s; sem esta opção, um servidor é iniciado dentro do caixa quando nenhum responde ali)")
	ATMDBFlag         = def("cmd.atm.db", "database of the server started inside the ATM (not used with --server)", "banco de dados do servidor iniciado dentro do caixa (não usado com --server)")
	WatchUsage        = def("cmd.watch.usage", "usage: atm watch [--server [tls://]HOST:PORT[,...]] [--ca FILE] [--operator-token TOKEN] [--lang pt-BR|en]", "uso: atm watch [--server [tls://]HOST:PORTA[,...]] [--ca ARQUIVO] [--operator-token TOKEN] [--lang pt-BR|en]")
	WatchAbout        = def("cmd.watch.about", "\nA live space-time diagram of every process of the bank: one lane per process,\ntime going down, messages from send to receive. It reads the server's event log\nas its operator. Keys are shown at the bottom; q quits.", "\nUm diagrama espaço-tempo ao vivo de todos os processos do banco: uma faixa por\nprocesso, o tempo descendo, mensagens do envio ao recebimento. Lê o registro de\neventos do servidor como seu operador. As teclas aparecem no rodapé; q sai.")
	WatchServerFlag   = def("cmd.watch.server", "the bank server's HOST:PORT (tls://HOST:PORT over TLS), or several servers of one bank HOST:PORT,HOST:PORT,... to fail over between", "HOST:PORTA do servidor do banco (tls://HOST:PORTA com TLS), ou vários servidores de um mesmo banco HOST:PORTA,HOST:PORTA,... para alternar entre eles")
	WatchTokenFlag    = def("cmd.watch.token", "the server's operator token (default $ATM_OPERATOR_TOKEN, else the file %s)", "o token de operador do servidor (padrão $ATM_OPERATOR_TOKEN, senão o arquivo %s)")
	WatchNoToken      = def("cmd.watch.notoken", "atm watch: no operator token. The watcher reads the bank's event log as its operator:\n  pass the token the server was started with, --operator-token TOKEN (or set $ATM_OPERATOR_TOKEN),\n  e.g. for a server started with 'atm serve --operator-token TOKEN'.\n  A server (atm serve, or one started inside an ATM) keeps its token in operator.token\n  beside its database; none is at %s.\n", "atm watch: sem token de operador. O observador lê o registro de eventos do banco como seu operador:\n  passe o token com que o servidor foi iniciado, --operator-token TOKEN (ou defina $ATM_OPERATOR_TOKEN),\n  p. ex. para um servidor iniciado com 'atm serve --operator-token TOKEN'.\n  Um servidor (atm serve, ou um iniciado dentro de um caixa) guarda seu token em operator.token\n  ao lado do banco de dados; não há nenhum em %s.\n")
	WatchTokenRefused = def("cmd.watch.refused", "the server at %s refused the operator token", "o servidor em %s recusou o token de operador")
)
