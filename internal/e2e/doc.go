// Package e2e holds Kaiwa's end-to-end tests: the kaiwa binary is built and
// run as real processes (one API with the log writer, two UAs) behind a
// real nginx over TLS, against real MariaDB and NATS, and driven by the
// client package and plain HTTPS calls, the way a game and its server use
// it.
package e2e
