package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/golang-migrate/migrate/v4"
	migratemysql "github.com/golang-migrate/migrate/v4/database/mysql"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/kaiwa-chat/kaiwa/migrations"
)

// MySQLEnv is the environment variable holding the test server's DSN.
const MySQLEnv = "KAIWA_TEST_MYSQL_DSN"

// DefaultMySQLDSN is the test server's DSN when [MySQLEnv] is not set.
const DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/"

// mysqlWait bounds how long [MySQL] polls for the server before failing.
const mysqlWait = 5 * time.Second

// MySQLServerDSN returns the DSN of the test server (no database selected),
// after checking that the server answers. It fails the test with a hint
// when it does not.
func MySQLServerDSN(t testing.TB) string {
	t.Helper()
	dsn := serverDSN(t)
	if err := openAdmin(t, dsn).Close(); err != nil {
		t.Fatalf("testenv: close mysql: %v", err)
	}
	return dsn
}

// serverDSN returns the test server's DSN from the environment.
func serverDSN(t testing.TB) string {
	t.Helper()
	dsn, err := envServerDSN()
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// envServerDSN returns the test server's DSN from the environment, with
// no database selected.
func envServerDSN() (string, error) {
	dsn := os.Getenv(MySQLEnv)
	if dsn == "" {
		dsn = DefaultMySQLDSN
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("testenv: %s=%q is not a valid MySQL DSN: %w", MySQLEnv, dsn, err)
	}
	cfg.DBName = ""
	return cfg.FormatDSN(), nil
}

// MySQL returns the DSN of a fresh database on the test server, with every
// migration applied. The database is dropped when the test ends.
func MySQL(t testing.TB) string {
	t.Helper()
	server := serverDSN(t)
	db := openAdmin(t, server)
	t.Cleanup(func() { _ = db.Close() })
	dsn, drop, err := createDatabase(db, server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// createDatabase makes a fresh database named kaiwa_t_<random hex> on the
// server of dsn server, through its admin connection db, and migrates it
// up. drop drops it.
func createDatabase(db *sql.DB, server string) (dsn string, drop func() error, err error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "kaiwa_t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return "", nil, fmt.Errorf("testenv: create database %s: %w", name, err)
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			return fmt.Errorf("testenv: drop database %s: %w", name, err)
		}
		return nil
	}
	dsn = WithDB(server, name)
	if err := migrateUp(ctx, dsn); err != nil {
		return "", nil, errors.Join(fmt.Errorf("testenv: migrate %s: %w", name, err), drop())
	}
	return dsn, drop, nil
}

// WithDB returns dsn with its database set to db. It panics when dsn is not
// a valid MySQL DSN.
func WithDB(dsn, db string) string {
	cfg := mustParseDSN(dsn)
	cfg.DBName = db
	return cfg.FormatDSN()
}

func mustParseDSN(dsn string) *mysql.Config {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		panic(fmt.Sprintf("testenv: invalid MySQL DSN: %v", err))
	}
	return cfg
}

// unreachable remembers the servers that never answered, so that the other
// tests of the process fail at once instead of waiting again.
var unreachable sync.Map // DSN → error message

// openAdmin opens dsn and polls it until the server answers, failing the
// test with instructions when it never does.
func openAdmin(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := waitAdmin(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// waitAdmin opens dsn and polls it until the server answers. When it never
// does, the error says what to do, and later calls fail at once.
func waitAdmin(dsn string) (*sql.DB, error) {
	if msg, ok := unreachable.Load(dsn); ok {
		return nil, errors.New(msg.(string))
	}
	cfg := mustParseDSN(dsn)
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("testenv: open mysql: %w", err)
	}
	db.SetMaxOpenConns(2)
	deadline := time.Now().Add(mysqlWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return db, nil
		}
		if time.Now().After(deadline) {
			_ = db.Close()
			msg := fmt.Sprintf("testenv: no MySQL server at %s (%v). Start MariaDB there, "+
				"point %s at another server, or run `make test`, which starts one.",
				cfg.Addr, err, MySQLEnv)
			unreachable.Store(dsn, msg)
			return nil, errors.New(msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// migrateUp applies every migration to the database of dsn. It speaks to
// golang-migrate directly so that packages the tenants package imports can
// use this helper too.
func migrateUp(ctx context.Context, dsn string) error {
	cfg := mustParseDSN(dsn)
	cfg.MultiStatements = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	drv, err := migratemysql.WithConnection(ctx, conn, &migratemysql.Config{})
	if err != nil {
		_ = conn.Close()
		return err
	}
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		_ = drv.Close()
		return err
	}
	m, err := migrate.NewWithInstance("iofs", src, "mysql", drv)
	if err != nil {
		_ = src.Close()
		_ = drv.Close()
		return err
	}
	err = m.Up()
	srcErr, dbErr := m.Close()
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return err
	}
	return errors.Join(srcErr, dbErr)
}
