package bench

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort is a [net.Dialer] Control that leaves the choice of a socket's
// local port to connect when the dialer binds a source address: a bind
// that must pick the port itself searches the whole ephemeral range for
// one this address does not use yet, which costs more the more
// connections (and closed ones in TIME_WAIT) the address already has. In a
// storm of 10,000 reconnects the load tool spent most of its CPU there.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
