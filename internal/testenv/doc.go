// Package testenv starts the real parts Kaiwa's tests run against: a fresh,
// migrated MySQL database per test ([MySQL]), a TCP proxy that can cut a
// test's connections to a server and restore them ([NewProxy]), and the
// other servers the packages' tests need.
//
// It is imported by test code only. Every helper takes a [testing.TB], calls
// t.Helper, registers its teardown with t.Cleanup and waits for readiness by
// polling, never by sleeping a fixed time.
//
// # MySQL
//
// The tests need a MySQL-compatible server (MariaDB 10.11 is what CI uses).
// Its DSN is read from the environment variable KAIWA_TEST_MYSQL_DSN and
// defaults to "root@tcp(127.0.0.1:3306)/". The account must be allowed to
// create and drop databases; each test gets its own database named
// kaiwa_t_<random hex>, dropped when the test ends. A package with many
// small tests may share one database and one NATS server instead, made by
// [RunShared] in its TestMain; its tests then keep out of each other's way
// (each with its own tenants).
package testenv
