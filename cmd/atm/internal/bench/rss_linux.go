package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// rssMeasured says whether rssKiB works on this system.
const rssMeasured = true

// rssKiB is the resident set size of process pid, from VmRSS in
// /proc/PID/status.
func rssKiB(pid int) (int64, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "VmRSS" {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return v, err == nil
	}
	return 0, false
}
