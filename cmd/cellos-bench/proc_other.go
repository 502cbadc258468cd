//go:build !linux

package main

import "syscall"

// childAttr: only Linux has a parent death signal; elsewhere an
// interrupted run ends its servers through killChildren alone.
func childAttr() *syscall.SysProcAttr { return nil }
