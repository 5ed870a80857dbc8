package server

import "net"

// hostOf is the host part of a connection's remote address, which is how
// the bank tells login sources apart (with the client's process id): the
// port changes with every connection, the host does not.
func hostOf(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}
