//go:build !linux

package bench

import "syscall"

// bindNoPort does nothing where IP_BIND_ADDRESS_NO_PORT is not known.
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
