package i18n

// TLS between the ATM (or a tool) and the bank: the connect screen's
// headlines and explanations, the first-use notice, and the flags and
// notes of the commands that reach a tls:// server.
var (
	TLSHeadChanged   = def("tls.head.changed", "✗ WARNING: the bank's certificate has changed. The ATM did not connect.", "✗ ATENÇÃO: o certificado do banco mudou. O caixa não se conectou.")
	TLSHeadUntrusted = def("tls.head.untrusted", "✗ The bank's certificate is not trusted. The ATM did not connect.", "✗ O certificado do banco não é confiável. O caixa não se conectou.")
	TLSHeadMismatch  = def("tls.head.mismatch", "✗ The bank and this ATM disagree about TLS.", "✗ O banco e este caixa não combinam quanto ao uso de TLS.")
	TLSHeadKnown     = def("tls.head.known", "✗ The ATM could not check the bank's certificate.", "✗ O caixa não conseguiu verificar o certificado do banco.")
	// TLSChanged: the remembered fingerprint, the one now shown, the
	// address and the known-servers file.
	TLSChanged = def("tls.changed",
		"Someone may be intercepting the connection, or the bank has a new certificate. Nothing was sent. Remembered %s, now %s. Only if the bank's operator confirms the new one, delete the line for %s in %s.",
		"Alguém pode estar interceptando a conexão, ou o banco tem um certificado novo. Nada foi enviado. O certificado guardado é %s; o de agora, %s. Só se o operador do banco confirmar o novo, apague a linha de %s em %s.")
	TLSUntrusted = def("tls.untrusted",
		"The certificate of %s is not signed for that address by the authority given with --ca. Check the address and the --ca file.",
		"O certificado de %s não foi assinado para esse endereço pela autoridade indicada em --ca. Confira o endereço e o arquivo de --ca.")
	TLSNotTLS = def("tls.nottls",
		"%s answers without TLS. Connect without tls:// (your PIN then crosses the network in clear), or ask the bank's operator to start the server with --tls.",
		"%s responde sem TLS. Conecte-se sem tls:// (sua senha então passa pela rede sem criptografia) ou peça ao operador do banco que inicie o servidor com --tls.")
	// TLSRequired: the address dialled, then the scheme and the host:port
	// to dial instead.
	TLSRequired = def("tls.required",
		"The bank at %s speaks TLS only. Connect with --server %s%s.",
		"O banco em %s só aceita TLS. Conecte-se com --server %s%s.")
	TLSNoConfigDir = def("tls.noconfigdir",
		"This computer has no config directory to remember bank certificates in. Set %s to a file, or use --known-servers FILE.",
		"Este computador não tem um diretório de configuração para guardar os certificados dos bancos. Defina %s com um arquivo ou use --known-servers ARQUIVO.")
	TLSKnownFile = def("tls.knownfile",
		"The list of known bank certificates, %s, could not be read or written. Check its permissions, or use --known-servers FILE.",
		"Não foi possível ler ou gravar a lista de certificados de bancos conhecidos, %s. Confira as permissões dela ou use --known-servers ARQUIVO.")
	TLSNotABank = def("tls.notabank",
		"%s did not complete a secure (TLS) connection like an atm bank.",
		"%s não completou uma conexão segura (TLS) como um banco atm.")
	// TLSFirstUse: the fingerprint and the known-servers file.
	TLSFirstUse = def("tls.firstuse",
		"First connection to this bank: its certificate %s is now remembered in %s. Compare it with the one the bank's operator announced; another will be refused.",
		"Primeira conexão com este banco: o certificado %s agora está guardado em %s. Compare-o com o que o operador do banco divulgou; outro será recusado.")
)

// The commands' TLS flags and notes (atm, atm watch and the tools).
var (
	// CmdCAFlag, CmdKnownFlag: the word in backquotes names the flag's
	// value in the flag list ("-ca FILE").
	CmdCAFlag = def("cmd.tls.ca",
		"for tls:// servers: trust the certificates signed by the authorities in this PEM `FILE` instead of trusting on first use",
		"para servidores tls://: confiar nos certificados assinados pelas autoridades deste `ARQUIVO` PEM em vez de confiar no primeiro uso")
	// CmdKnownFlag: the environment variable, then the default file.
	CmdKnownFlag = def("cmd.tls.known",
		"for tls:// servers: the `FILE` of certificate fingerprints remembered on first use (default $%s, else %s)",
		"para servidores tls://: o `ARQUIVO` das impressões digitais de certificados guardadas no primeiro uso (padrão $%s, senão %s)")
	CmdKnownDefault = def("cmd.tls.known.default",
		"known_servers in the atm folder of the user's config directory",
		"known_servers na pasta atm do diretório de configuração do usuário")
	// CmdFirstUse: the command, the server's address, the fingerprint and
	// the known-servers file.
	CmdFirstUse = def("cmd.tls.firstuse",
		"%s: first connection to %s: its TLS certificate %s is now remembered in %s; compare it with the fingerprint in the server's start line",
		"%s: primeira conexão com %s: o certificado TLS %s agora está guardado em %s; compare-o com a impressão digital na linha de início do servidor")
)
