// Package migrations holds Kaiwa's MySQL schema as golang-migrate files,
// NNNNNN_name.up.sql and NNNNNN_name.down.sql, embedded in [FS].
//
// Every table is InnoDB in utf8mb4. Columns that hold names (tenant ids, user
// ids, channel names, message and event ids, credential hashes) use a binary
// collation, because names are case-sensitive: "Alice" and "alice" are two
// users. Each migration's down file undoes exactly its up file.
//
// The tenants package applies them (tenants.Migrate, "kaiwa migrate"); test
// helpers apply them to a fresh database per test.
package migrations

import "embed"

// FS holds the migration files at its root, for golang-migrate's iofs source:
// iofs.New(migrations.FS, ".").
//
//go:embed *.sql
var FS embed.FS
