package tenants

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kaiwa-chat/kaiwa"
)

// Every implementation proves its contract.
var (
	_ kaiwa.TenantStore     = (*Store)(nil)
	_ kaiwa.TokenStore      = (*Store)(nil)
	_ kaiwa.ChannelStore    = (*Store)(nil)
	_ kaiwa.MessageLog      = (*Store)(nil)
	_ kaiwa.EventLog        = (*Store)(nil)
	_ kaiwa.NGStore         = (*Store)(nil)
	_ kaiwa.ModerationStore = (*Store)(nil)
	_ kaiwa.Directory       = (*Store)(nil)
)

// Pool limits of the connection pool [Open] makes.
const (
	MaxOpenConns    = 32
	MaxIdleConns    = 16
	ConnMaxLifetime = 5 * time.Minute
	ConnMaxIdleTime = time.Minute
)

// Store is the MySQL storage of every tenant. It is safe for concurrent use.
//
// Transactions that change several rows lock them in one order, so that
// they never deadlock each other: a tenant's row (NG-list changes, key
// revocation) before its other rows, and a channel's row (membership
// changes, deletion) before its members.
type Store struct {
	db *sql.DB

	// KeyTouchInterval is how stale an API key's last_used_at may get: a
	// successful [Store.AuthenticateKey] writes it only when older than this.
	// Set it before the Store is shared.
	KeyTouchInterval time.Duration

	// TokenGrace is how long [Store.Purge] keeps a user token after it
	// expired, so that a client presenting it meanwhile is told
	// [kaiwa.CodeTokenExpired] (fetch a new one) rather than
	// [kaiwa.CodeUnauthorized]. Set it before the Store is shared.
	TokenGrace time.Duration

	// clockFn is the clock set by [Store.SetClock]; nil means time.Now.
	clockFn atomic.Pointer[func() time.Time]
}

// Open connects to the MySQL database named by dsn (go-sql-driver/mysql
// format, e.g. "kaiwa:secret@tcp(db:3306)/kaiwa") and checks that it
// answers. It sets the options the store relies on (parseTime, UTC, strict
// SQL mode, client-side parameter interpolation, timeouts) and the pool
// limits above.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse mysql dsn: %w", err)
	}
	if cfg.DBName == "" {
		return nil, errors.New("tenants: the mysql dsn names no database")
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	cfg.MultiStatements = false // one statement per query, always
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["sql_mode"]; !ok {
		cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open mysql: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(MaxOpenConns)
	db.SetMaxIdleConns(MaxIdleConns)
	db.SetConnMaxLifetime(ConnMaxLifetime)
	db.SetConnMaxIdleTime(ConnMaxIdleTime)
	s := &Store{db: db, KeyTouchInterval: time.Minute, TokenGrace: DefaultTokenGrace}
	if err := s.Ping(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// DefaultTokenGrace is the [Store.TokenGrace] of a Store made by [Open].
const DefaultTokenGrace = 24 * time.Hour

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers; [kaiwa.CodeUnavailable] when not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return dbError("ping mysql", err)
	}
	return nil
}

// SetClock makes now the store's clock: every time the store writes
// (created_at, expires_at, revoked_at, ...) and every time it compares
// against (token expiry, sanctions in force, retention) comes from it. nil
// restores the wall clock. Tests set it to prove what happens at a given
// time without waiting for it; it is safe to call while the store is in
// use.
func (s *Store) SetClock(now func() time.Time) {
	if now == nil {
		s.clockFn.Store(nil)
		return
	}
	s.clockFn.Store(&now)
}

// now returns the time of the store's clock.
func (s *Store) now() time.Time {
	if f := s.clockFn.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// clock returns the current time in UTC, at the millisecond precision of
// the schema's DATETIME(3) columns.
func (s *Store) clock() time.Time {
	return s.now().UTC().Truncate(time.Millisecond)
}

// MySQL error numbers the store handles.
const (
	errDupEntry         = 1062
	errNoReferencedRow  = 1452
	errTooManyConns     = 1040
	errServerShutdown   = 1053
	errLockWaitTimeout  = 1205
	errLockDeadlock     = 1213
	errQueryInterrupted = 1317
	errConnKilled       = 1927
)

func mysqlErrno(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// unavailable reports whether err means the database could not be reached
// or could not serve the request for now (a retry may succeed).
func unavailable(err error) bool {
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, sql.ErrConnDone), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	switch mysqlErrno(err) {
	case errTooManyConns, errServerShutdown, errLockWaitTimeout, errLockDeadlock,
		errQueryInterrupted, errConnKilled:
		return true
	}
	return false
}

// dbError wraps a database error with context. Errors meaning the database
// is unreachable carry [kaiwa.CodeUnavailable]; the cause stays in the chain.
func dbError(op string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("%s: %w (%w)", op, kaiwa.Errorf(kaiwa.CodeUnavailable, "database unavailable"), err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// execer runs statements: a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// affected returns the rows a statement changed.
func affected(res sql.Result, op string) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, dbError(op, err)
	}
	return n, nil
}

// checkTenant validates a tenant id argument.
// placeholders returns "?, ?, ..." with n marks, for an IN list or a row.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func checkTenant(id kaiwa.TenantID) error { return kaiwa.CheckID("tenant", string(id)) }

// rollback ends tx after a failure; its own error adds nothing.
func rollback(tx *sql.Tx) { _ = tx.Rollback() }
