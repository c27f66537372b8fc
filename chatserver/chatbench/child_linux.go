package chatbench

import "syscall"

// childAttr makes the kernel kill a server child if the bench dies first.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
