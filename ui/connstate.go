package ui

import (
	"time"

	"atm/netproto/client"
	"atm/ui/i18n"
)

// connState is the connection as the person sees it: whether the ATM is
// offline and how the client's reconnection goes, the banner above the help
// bar, and the notice of the last push with the balance it highlights.
// The root model changes it through its methods alone.
type connState struct {
	// offline: the client lost the connection and is reconnecting by
	// itself; requests are refused meanwhile (refused says so).
	offline  bool
	attempt  int           // the reconnection attempt announced last (0: none yet)
	delay    time.Duration // its wait
	starting bool          // the last attempt found the bank starting
	retrying bool          // the person asked to retry now
	refused  string

	banner    string // connection trouble, or news of it
	bannerBad bool
	bannerID  int

	notice   string // a push that just arrived
	push     client.Push
	noticeID int
	hot      bool // highlight the balance after the push
}

// lost: the connection dropped and no reconnection was announced yet.
func (c *connState) lost() {
	c.offline, c.attempt, c.retrying, c.starting = true, 0, false, false
}

// reconnecting: the client announced its attempt-th reconnection, in
// delay; starting says the bank answered the last one that it is starting.
func (c *connState) reconnecting(attempt int, delay time.Duration, starting bool) {
	c.offline, c.attempt, c.delay, c.retrying, c.starting = true, attempt, delay, false, starting
}

// online: the connection is back, or the ATM let the client go; a refusal
// shown meanwhile is no longer news.
func (c *connState) online() {
	c.offline, c.retrying, c.refused = false, false, ""
}

// retryNow: the person asked the client to try again at once.
func (c *connState) retryNow() {
	c.retrying, c.refused = true, ""
}

// refuse says a request was not sent because the ATM is offline.
func (c *connState) refuse(text string) { c.refused = text }

// ackRefusal: a key acknowledged the refusal.
func (c *connState) ackRefusal() { c.refused = "" }

// setBanner shows text as the banner, bad or good news, and returns its id
// for clearBanner.
func (c *connState) setBanner(text string, bad bool) int {
	c.banner, c.bannerBad = text, bad
	c.bannerID++
	return c.bannerID
}

// clearBanner takes the banner away if it is still the one of id.
func (c *connState) clearBanner(id int) {
	if id == c.bannerID {
		c.banner = ""
	}
}

// badNews says the banner shows connection trouble.
func (c *connState) badNews() bool { return c.banner != "" && c.bannerBad }

// pushed shows the notice text of push p, highlights the balance when p
// brings one, and returns the notice's id for clearNotice.
func (c *connState) pushed(text string, p client.Push) int {
	c.push, c.notice, c.hot = p, text, p.HasBalance
	c.noticeID++
	return c.noticeID
}

// clearNotice takes the push notice away if it is still the one of id.
func (c *connState) clearNotice(id int) {
	if id == c.noticeID {
		c.notice, c.hot = "", false
	}
}

// ackNotice: a key acknowledged the push notice.
func (c *connState) ackNotice() {
	c.noticeID++
	c.notice, c.hot = "", false
}

// offlineLine is the status line while offline.
func (c *connState) offlineLine(tr *i18n.Printer) string {
	switch {
	case c.retrying:
		return tr.T(i18n.OfflineRetrying)
	case c.attempt == 0:
		return tr.T(i18n.OfflineLost)
	}
	if c.starting {
		return tr.T(i18n.OfflineStarting, c.attempt, waitText(tr, c.delay))
	}
	return tr.T(i18n.OfflineAttempt, c.attempt, waitText(tr, c.delay))
}
