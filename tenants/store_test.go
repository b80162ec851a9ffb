package tenants

import (
	"context"
	"database/sql"
	"io"
	"log"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/kaiwa-chat/kaiwa"
	"github.com/kaiwa-chat/kaiwa/internal/testenv"
)

func TestMain(m *testing.M) {
	// The driver logs every connection a test cuts on purpose.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	os.Exit(m.Run())
}

// newStore opens a Store on a fresh, migrated database.
func newStore(t testing.TB) *Store {
	t.Helper()
	return openStore(t, testenv.MySQL(t))
}

func openStore(t testing.TB, dsn string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newTenant creates a tenant and returns its API key.
func newTenant(t testing.TB, s *Store, id kaiwa.TenantID) string {
	t.Helper()
	key, err := s.CreateTenant(context.Background(), id, "Game "+string(id))
	if err != nil {
		t.Fatalf("create tenant %s: %v", id, err)
	}
	return key
}

// wantCode fails the test unless err carries code.
func wantCode(t testing.TB, err error, code kaiwa.Code) {
	t.Helper()
	if got := kaiwa.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

// must fails the test on a non-nil error.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesDSNWithoutDatabase(t *testing.T) {
	t.Parallel()
	_, err := Open(context.Background(), "root@tcp(127.0.0.1:3306)/")
	if err == nil || !strings.Contains(err.Error(), "no database") {
		t.Fatalf("Open without a database: %v", err)
	}
	_, err = Open(context.Background(), "not a dsn")
	if err == nil {
		t.Fatal("Open accepted a malformed dsn")
	}
}

func TestMigrateUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.MySQL(t) // already migrated up

	tables := func() int {
		t.Helper()
		db, err := sql.Open("mysql", dsn)
		must(t, err)
		defer db.Close()
		var n int
		must(t, db.QueryRow(`SELECT COUNT(*) FROM information_schema.tables
			WHERE table_schema = DATABASE() AND table_name <> 'schema_migrations'`).Scan(&n))
		return n
	}
	check := func(cmd string, wantVersion uint, wantTables int) {
		t.Helper()
		v, dirty, err := Migrate(ctx, dsn, cmd)
		if err != nil || dirty || v != wantVersion {
			t.Fatalf("Migrate %s = %d, %v, %v; want %d, clean", cmd, v, dirty, err, wantVersion)
		}
		if n := tables(); n != wantTables {
			t.Fatalf("after %s: %d tables, want %d", cmd, n, wantTables)
		}
	}
	check(MigrateVersion, 24, 21)
	check(MigrateUp, 24, 21) // no change
	check(MigrateDown, 0, 0)
	check(MigrateVersion, 0, 0)
	check(MigrateUp, 24, 21)

	// The schema works after the round trip.
	s := openStore(t, dsn)
	newTenant(t, s, "acme")

	if _, _, err := Migrate(ctx, dsn, "sideways"); err == nil {
		t.Fatal("Migrate accepted an unknown command")
	}
}

func TestUnavailableWhileDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	dsn := testenv.MySQL(t)
	cfg, err := mysql.ParseDSN(dsn)
	must(t, err)
	proxy := testenv.NewProxy(t, cfg.Addr)
	s := openStore(t, testenv.DSNVia(dsn, proxy.Addr()))
	ctx := context.Background()
	newTenant(t, s, "acme")

	proxy.Cut()
	_, err = s.TenantSettings(ctx, "acme")
	wantCode(t, err, kaiwa.CodeUnavailable)
	wantCode(t, s.Ping(ctx), kaiwa.CodeUnavailable)
	_, err = s.ResolveToken(ctx, kaiwa.NewCredential("acme"))
	wantCode(t, err, kaiwa.CodeUnavailable)
	if kaiwa.ErrorMessage(err) != "database unavailable" {
		t.Fatalf("unavailable error shows clients %q", kaiwa.ErrorMessage(err))
	}

	proxy.Restore()
	testenv.Eventually(t, "the store recovers after the database came back", 5*time.Second, func() bool {
		return s.Ping(ctx) == nil
	})
	if _, err := s.TenantSettings(ctx, "acme"); err != nil {
		t.Fatalf("after restore: %v", err)
	}
}

// migrateSteps moves the schema of dsn n migrations up (or down when
// negative).
func migrateSteps(t testing.TB, dsn string, n int) {
	t.Helper()
	m, done, err := openMigrate(context.Background(), dsn)
	must(t, err)
	defer done()
	must(t, m.Steps(n))
}

// migrateTo moves the schema of dsn to version v.
func migrateTo(t testing.TB, dsn string, v uint) {
	t.Helper()
	m, done, err := openMigrate(context.Background(), dsn)
	must(t, err)
	defer done()
	must(t, m.Migrate(v))
}

func TestMigration2UpgradesData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.MySQL(t)
	migrateTo(t, dsn, 1) // back to the first schema
	db, err := sql.Open("mysql", dsn)
	must(t, err)
	defer db.Close()
	for _, q := range []string{
		"INSERT INTO tenants (id, name, settings, created_at) VALUES ('a', 'A', '{\"max_channel_members\":3}', NOW())",
		"INSERT INTO channels (tenant_id, name, created_at) VALUES ('a', 'full', NOW()), ('a', 'empty', NOW())",
		"INSERT INTO members (tenant_id, channel, user_id, created_at) VALUES ('a', 'full', 'u1', NOW()), ('a', 'full', 'u2', NOW()), ('a', 'full', 'u3', NOW())",
		"INSERT INTO messages (tenant_id, id, seq, channel, from_user, text, ts) VALUES ('a', 'm1', 1, 'full', 'u1', 'hi', 1000), ('a', 'm2', 2, 'full', 'u2', 'yo', 2000)",
	} {
		_, err := db.Exec(q)
		must(t, err)
	}
	migrateSteps(t, dsn, 2)

	s := openStore(t, dsn)
	_, err = s.AddMember(ctx, "a", "full", "u4")
	wantCode(t, err, kaiwa.CodeTooLarge) // the count came from the members
	if added, err := s.AddMember(ctx, "a", "empty", "u4"); err != nil || !added {
		t.Fatalf("AddMember to the empty channel = %v, %v", added, err)
	}
	page, err := s.Messages(ctx, "a", kaiwa.MessageQuery{})
	must(t, err)
	if got := ids(page.Messages); !reflect.DeepEqual(got, []string{"m1", "m2"}) {
		t.Fatalf("messages after the upgrade = %v", got)
	}

	// Going down drops deleted messages with their tombstones.
	if _, err := s.DeleteMessage(ctx, "a", "full", "m1", false); err != nil {
		t.Fatal(err)
	}
	migrateSteps(t, dsn, -2)
	var n int
	must(t, db.QueryRow("SELECT COUNT(*) FROM messages WHERE tenant_id = 'a'").Scan(&n))
	if n != 1 {
		t.Fatalf("%d messages after going down, want 1", n)
	}
}
