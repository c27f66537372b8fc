package host

import "syscall"

// setDeathSignal makes the kernel SIGKILL the child when the host
// dies, even by kill -9.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
