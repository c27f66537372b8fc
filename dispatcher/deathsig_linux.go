package dispatcher

import "syscall"

// setDeathSignal makes the kernel SIGKILL the child when the dispatcher
// dies, even by kill -9.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
