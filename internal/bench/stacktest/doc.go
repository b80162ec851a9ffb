// Package stacktest runs the load tool of package bench against a real
// Kaiwa stack started inside the test: MariaDB, an in-process NATS server
// with JetStream, the API tier's directory served over the bus, and a UA
// server. It holds tests only; they sit apart from package bench so that
// the load tool's own tests need no database.
package stacktest
