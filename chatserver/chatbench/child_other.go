//go:build !linux

package chatbench

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
