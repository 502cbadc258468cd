package main

import "syscall"

// childAttr makes a started server die with this command (Linux's parent
// death signal), so an abrupt end of a run leaves no server behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
