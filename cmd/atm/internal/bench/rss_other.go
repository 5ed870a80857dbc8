//go:build !linux

package bench

// rssMeasured says whether rssKiB works on this system: the resident set
// size is read from /proc, which only Linux has.
const rssMeasured = false

// rssKiB is never known here.
func rssKiB(pid int) (int64, bool) { return 0, false }
