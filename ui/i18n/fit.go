package i18n

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// Fit cuts plain text to at most w cells without cutting a word: whole
// words are kept and " …" says that more followed. Text that fits is
// returned as it is; a first word longer than w is all that is cut, and
// only then.
func Fit(s string, w int) string {
	if ansi.StringWidth(s) <= w {
		return s
	}
	if w < 2 {
		return ansi.Truncate(s, max(0, w), "")
	}
	cut := ansi.Truncate(s, w-2, "")
	if !strings.HasSuffix(cut, " ") && !strings.HasPrefix(s[len(cut):], " ") {
		// The cut is inside a word: leave that word out.
		i := strings.LastIndexByte(cut, ' ')
		if i <= 0 {
			return ansi.Truncate(s, w, "…") // one word longer than the line
		}
		cut = cut[:i]
	}
	if cut = strings.TrimRight(cut, " "); cut == "" {
		return ansi.Truncate(s, w, "…")
	}
	return cut + " …"
}
