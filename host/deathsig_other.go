//go:build !linux

package host

import "syscall"

// setDeathSignal is a no-op where Pdeathsig does not exist; children still
// exit when their parent changes (proc.Serve watches it).
func setDeathSignal(*syscall.SysProcAttr) {}
