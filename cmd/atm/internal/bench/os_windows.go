package bench

import (
	"syscall"
	"time"
)

// cpuTime is the user and kernel CPU time of this process so far.
func cpuTime() time.Duration {
	h, err := syscall.GetCurrentProcess()
	if err != nil {
		return 0
	}
	var creation, exit, kernel, user syscall.Filetime
	if syscall.GetProcessTimes(h, &creation, &exit, &kernel, &user) != nil {
		return 0
	}
	return filetimeDuration(kernel) + filetimeDuration(user)
}

// filetimeDuration is a FILETIME holding a duration (in 100 ns units), not
// a date.
func filetimeDuration(f syscall.Filetime) time.Duration {
	return time.Duration(uint64(f.HighDateTime)<<32|uint64(f.LowDateTime)) * 100
}

// raiseFileLimit does nothing: Windows has no per-process limit on open
// sockets to raise.
func raiseFileLimit() {}
