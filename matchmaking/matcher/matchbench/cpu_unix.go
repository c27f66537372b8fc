//go:build unix

package matchbench

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used (user + system, every
// thread, so the garbage collector's work counts too). Unlike wall time it
// does not grow while other processes hold the CPUs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
