//go:build !unix && !windows

package bench

import "time"

// cpuTime is 0: this system's CPU time is not measured, and the cpu line
// and fields are left out.
func cpuTime() time.Duration { return 0 }

// raiseFileLimit does nothing here.
func raiseFileLimit() {}
