package devstack

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func requireMariaDB(t *testing.T) {
	t.Helper()
	if !HaveMariaDB() {
		if os.Getenv("CI") == "" {
			t.Skip("MariaDB server binaries not installed (make test installs them)")
		}
		t.Fatal("MariaDB server binaries not installed; scripts/deps.sh test installs them")
	}
}

func TestMariaDBStartStopRestart(t *testing.T) {
	t.Parallel()
	requireMariaDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "mysql")
	var log lockedBuffer

	m, err := StartMariaDB(ctx, dir, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop() })
	if !m.Initialized {
		t.Error("first start did not report a fresh data directory")
	}
	if want := "root@unix(" + filepath.Join(dir, "mysqld.sock") + ")/kaiwa"; m.DSN != want {
		t.Errorf("DSN = %s, want %s", m.DSN, want)
	}
	db, err := sql.Open("mysql", m.DSN)
	if err != nil {
		t.Fatal(err)
	}
	var name, charset string
	if err := db.QueryRowContext(ctx, "SELECT DATABASE(), @@character_set_database").Scan(&name, &charset); err != nil {
		t.Fatal(err)
	}
	if name != "kaiwa" || charset != "utf8mb4" {
		t.Errorf("database %s with charset %s, want kaiwa utf8mb4", name, charset)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE kept (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	var port int
	if err := db.QueryRowContext(ctx, "SELECT @@skip_networking").Scan(&port); err != nil || port != 1 {
		t.Errorf("server listens on TCP (skip_networking=%d, %v)", port, err)
	}
	db.Close()

	if err := m.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if m.Running() {
		t.Fatal("server still running after Stop")
	}
	if pingSocket(ctx, m.Socket) == nil {
		t.Fatal("socket still answers after Stop")
	}

	// A second start reuses the data directory and keeps the data.
	m2, err := StartMariaDB(ctx, dir, &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m2.Stop() })
	if m2.Initialized {
		t.Error("second start initialised the data directory again")
	}
	db, err = sql.Open("mysql", m2.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id int
	if err := db.QueryRowContext(ctx, "SELECT id FROM kept").Scan(&id); err != nil || id != 42 {
		t.Errorf("data lost across restart: %d, %v", id, err)
	}

	// A third start while the second runs reuses it and leaves it alone.
	m3, err := StartMariaDB(ctx, dir, &log)
	if err != nil {
		t.Fatal(err)
	}
	if m3.Running() {
		t.Error("reused server reported as started by this process")
	}
	if err := m3.Stop(); err != nil || !m2.Running() {
		t.Errorf("stopping a reused server stopped it (%v)", err)
	}
	if err := m2.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}
