//go:build !linux

package dispatcher

import "syscall"

// setDeathSignal is a no-op where Pdeathsig does not exist; children still
// exit when their parent changes (fleet.Serve watches it).
func setDeathSignal(*syscall.SysProcAttr) {}
