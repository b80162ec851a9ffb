package testenv

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestMySQLFreshMigratedDatabase(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("use", func(t *testing.T) {
		dsn := MySQL(t)
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		name = cfg.DBName
		if !strings.HasPrefix(name, "kaiwa_t_") {
			t.Fatalf("database %q lacks the kaiwa_t_ prefix", name)
		}
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		err = db.QueryRowContext(context.Background(),
			"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name IN ('tenants','api_keys','user_tokens','channels','members','messages','events')",
			name).Scan(&n)
		if err != nil || n != 7 {
			t.Fatalf("migrated tables: %d, %v; want 7", n, err)
		}
	})

	db, err := sql.Open("mysql", MySQLServerDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.QueryRow("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n)
	if err != nil || n != 0 {
		t.Fatalf("database %s still exists after its test: %d, %v", name, n, err)
	}
}
