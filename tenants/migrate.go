package tenants

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
	"github.com/golang-migrate/migrate/v4"
	migratemysql "github.com/golang-migrate/migrate/v4/database/mysql"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/kaiwa-chat/kaiwa/migrations"
)

// The commands of [Migrate].
const (
	MigrateUp      = "up"
	MigrateDown    = "down"
	MigrateVersion = "version"
)

// Migrate runs a schema command on the database of dsn: "up" applies every
// pending migration, "down" reverts all of them, "version" changes nothing.
// It returns the schema version afterwards (0 when no migration is applied)
// and whether a failed migration left it dirty. Concurrent runs are
// serialised by golang-migrate's lock.
func Migrate(ctx context.Context, dsn string, cmd string) (version uint, dirty bool, err error) {
	if cmd != MigrateUp && cmd != MigrateDown && cmd != MigrateVersion {
		return 0, false, fmt.Errorf("migrate: unknown command %q (want up, down or version)", cmd)
	}
	m, done, err := openMigrate(ctx, dsn)
	if err != nil {
		return 0, false, err
	}
	defer done()

	stop := context.AfterFunc(ctx, func() { m.GracefulStop <- true })
	defer stop()
	switch cmd {
	case MigrateUp:
		err = m.Up()
	case MigrateDown:
		err = m.Down()
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return 0, false, fmt.Errorf("migrate %s: %w", cmd, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, false, fmt.Errorf("migrate %s: %w", cmd, err)
	}
	version, dirty, err = m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	return version, dirty, nil
}

// openMigrate prepares golang-migrate on the database of dsn with the
// migrations of package migrations; done releases it.
func openMigrate(ctx context.Context, dsn string) (m *migrate.Migrate, done func(), err error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("parse mysql dsn: %w", err)
	}
	cfg.MultiStatements = true // golang-migrate runs each file as one multi-statement query
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, nil, fmt.Errorf("open mysql: %w", err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return nil, nil, dbError("connect to mysql", err)
	}
	drv, err := migratemysql.WithConnection(ctx, conn, &migratemysql.Config{})
	if err != nil {
		_ = conn.Close()
		_ = db.Close()
		return nil, nil, dbError("prepare migrations", err)
	}
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		_ = drv.Close()
		_ = db.Close()
		return nil, nil, fmt.Errorf("read migrations: %w", err)
	}
	m, err = migrate.NewWithInstance("iofs", src, "mysql", drv)
	if err != nil {
		_ = src.Close()
		_ = drv.Close()
		_ = db.Close()
		return nil, nil, fmt.Errorf("prepare migrations: %w", err)
	}
	return m, func() {
		_, _ = m.Close()
		_ = db.Close()
	}, nil
}
