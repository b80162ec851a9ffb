package devstack

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDB is a private MariaDB server for local runs: its data, socket, pid
// file and error log all live in one directory, it listens on its unix
// socket only, and root logs in without a password.
type MariaDB struct {
	// Dir holds data/, mysqld.sock, mysqld.pid and error.log.
	Dir string
	// Socket is the server's unix socket (absolute).
	Socket string
	// DSN reaches the kaiwa database as root over the socket.
	DSN string
	// Initialized reports that this start created a fresh data directory.
	Initialized bool

	cmd    *exec.Cmd
	exited chan struct{}
	err    error // the server's exit status, set before exited closes
}

// DatabaseName is the database the dev stack keeps its data in.
const DatabaseName = "kaiwa"

// maxSocketPath is the longest unix socket path Linux accepts.
const maxSocketPath = 107

// ErrNoMariaDB is returned by [StartMariaDB] when no MariaDB server binaries
// are installed.
var ErrNoMariaDB = errors.New("devstack: mariadbd and mariadb-install-db not found (apt-get install mariadb-server)")

// mariadbBinary finds a server binary on PATH or in /usr/sbin and /usr/bin,
// trying the names in order.
func mariadbBinary(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			p := filepath.Join(dir, n)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p, nil
			}
		}
	}
	return "", ErrNoMariaDB
}

// HaveMariaDB reports whether the MariaDB server binaries are installed.
func HaveMariaDB() bool {
	_, err1 := mariadbBinary("mariadbd", "mysqld")
	_, err2 := mariadbBinary("mariadb-install-db", "mysql_install_db")
	return err1 == nil && err2 == nil
}

// StartMariaDB starts a private MariaDB server in dir, creating its data
// directory on first use, waits until it answers, and creates the kaiwa
// database. A server already answering on dir's socket (left by an earlier
// run) is used as it is. Server output goes to log (nil discards). Stop the
// server with [MariaDB.Stop].
func StartMariaDB(ctx context.Context, dir string, log io.Writer) (*MariaDB, error) {
	if log == nil {
		log = io.Discard
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mariadb: %w", err)
	}
	m := &MariaDB{Dir: dir, Socket: filepath.Join(dir, "mysqld.sock")}
	if len(m.Socket) > maxSocketPath {
		return nil, fmt.Errorf("mariadb: socket path %s is longer than %d bytes; use a shorter var directory", m.Socket, maxSocketPath)
	}
	m.DSN = rootDSN(m.Socket, DatabaseName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mariadb: %w", err)
	}

	// A server from an earlier run that is still up is reused.
	if pingSocket(ctx, m.Socket) == nil {
		fmt.Fprintf(log, "reusing the MariaDB server already running on %s\n", m.Socket)
		return m, m.createDatabase(ctx)
	}

	server, err := mariadbBinary("mariadbd", "mysqld")
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data")
	asRoot := os.Geteuid() == 0
	if _, err := os.Stat(filepath.Join(dataDir, "mysql")); errors.Is(err, os.ErrNotExist) {
		if err := installDB(ctx, dataDir, asRoot, log); err != nil {
			return nil, err
		}
		m.Initialized = true
	}

	_ = os.Remove(m.Socket) // stale after a crash
	args := []string{
		"--no-defaults",
		"--datadir=" + dataDir,
		"--socket=" + m.Socket,
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--log-error=" + filepath.Join(dir, "error.log"),
		"--skip-networking",
		"--skip-log-bin",
		"--innodb-flush-log-at-trx-commit=2",
		"--innodb-buffer-pool-dump-at-shutdown=0",
		"--innodb-buffer-pool-load-at-startup=0",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_unicode_ci",
	}
	if asRoot {
		args = append(args, "--user=root")
	}
	m.cmd = exec.Command(server, args...)
	m.cmd.Stdout, m.cmd.Stderr = log, log
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	m.cmd.WaitDelay = time.Second
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("mariadb: start %s: %w", server, err)
	}
	m.exited = make(chan struct{})
	go func() {
		m.err = m.cmd.Wait()
		close(m.exited)
	}()

	if err := m.waitReady(ctx, 60*time.Second); err != nil {
		_ = m.Stop()
		return nil, err
	}
	if err := m.createDatabase(ctx); err != nil {
		_ = m.Stop()
		return nil, err
	}
	return m, nil
}

func installDB(ctx context.Context, dataDir string, asRoot bool, log io.Writer) error {
	install, err := mariadbBinary("mariadb-install-db", "mysql_install_db")
	if err != nil {
		return err
	}
	// Install into a temporary directory and rename it, so an interrupted
	// install never leaves a half-made data directory that looks complete.
	tmp := dataDir + ".installing"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("mariadb: %w", err)
	}
	args := []string{
		"--no-defaults",
		"--datadir=" + tmp,
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		// Nothing to protect yet: skip the syncs that make bootstrap slow.
		"--skip-log-bin",
		"--innodb-flush-log-at-trx-commit=0",
		"--innodb-doublewrite=0",
		"--innodb-flush-method=nosync",
	}
	if asRoot {
		args = append(args, "--user=root")
	}
	fmt.Fprintf(log, "initialising MariaDB data directory %s\n", dataDir)
	cmd := exec.CommandContext(ctx, install, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mariadb: %s: %w\n%s", filepath.Base(install), err, out.Bytes())
	}
	if err := os.Rename(tmp, dataDir); err != nil {
		return fmt.Errorf("mariadb: %w", err)
	}
	return nil
}

// waitReady polls the socket until the server answers, it exits, or the
// timeout passes.
func (m *MariaDB) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := pingSocket(ctx, m.Socket)
		if err == nil {
			return nil
		}
		select {
		case <-m.exited:
			return fmt.Errorf("mariadb: server exited: %v\n%s", m.err, m.errorLogTail())
		case <-ctx.Done():
			return fmt.Errorf("mariadb: not ready on %s: %w (last: %v)\n%s", m.Socket, ctx.Err(), err, m.errorLogTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (m *MariaDB) errorLogTail() string {
	b, _ := os.ReadFile(filepath.Join(m.Dir, "error.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func (m *MariaDB) createDatabase(ctx context.Context) error {
	db, err := sql.Open("mysql", rootDSN(m.Socket, ""))
	if err != nil {
		return fmt.Errorf("mariadb: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+DatabaseName+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		return fmt.Errorf("mariadb: create database: %w", err)
	}
	return nil
}

// Stop shuts the server down (SIGTERM, then SIGKILL after a minute) and
// waits for it. A reused server that this process did not start is left
// running.
func (m *MariaDB) Stop() error {
	if m.cmd == nil {
		return nil
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(time.Minute):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.exited
	}
	var ee *exec.ExitError
	if m.err != nil && !errors.As(m.err, &ee) {
		return fmt.Errorf("mariadb: stop: %w", m.err)
	}
	if ee != nil && !ee.Success() {
		return fmt.Errorf("mariadb: server exited with %v", ee)
	}
	return nil
}

// Pid is the server's process id, 0 when this process did not start it.
// Tests freeze (SIGSTOP) and kill the server through it.
func (m *MariaDB) Pid() int {
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Exited is closed when a server this process started has exited (nil
// when it did not start one).
func (m *MariaDB) Exited() <-chan struct{} { return m.exited }

// Running reports whether this process started the server and it has not
// exited.
func (m *MariaDB) Running() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

func rootDSN(socket, db string) string {
	c := mysql.NewConfig()
	c.User = "root"
	c.Net = "unix"
	c.Addr = socket
	c.DBName = db
	return c.FormatDSN()
}

// pingSocket reports whether a MySQL server answers as root on socket.
func pingSocket(ctx context.Context, socket string) error {
	if _, err := os.Stat(socket); err != nil {
		return err
	}
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr = "root", "unix", socket
	c.Timeout = time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}
