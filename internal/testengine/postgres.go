package testengine

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The private PostgreSQL cluster, laid out in a temporary directory:
//
//	/tmp/packyard-pg-NNN/      owned by the server's user, 0755
//	    owner                  the process ID of the test binary
//	    data/                  the cluster (initdb), with its settings
//	                           appended to data/postgresql.conf
//	    .s.PGSQL.<port>        the unix socket
//	    log                    the server's output
//
// It listens on 127.0.0.1:<port> and the socket, trusts every local
// connection, and keeps fsync on. Its superuser is postgres.
//
// A test binary that dies without running Main's stops (killed, or timed
// out) leaves its cluster running; the next one to start a cluster stops
// and removes the clusters whose owner is gone.

// pgUser is the superuser of the cluster and the OS user that runs it when
// the tests run as root (PostgreSQL refuses to run as root).
const pgUser = "postgres"

// errNoPostgres says why the cluster cannot be had on this machine.
var errNoPostgres = errors.New("PostgreSQL binaries (initdb, pg_ctl, createdb, dropdb) not found on PATH, " +
	"under /usr/lib/postgresql/*/bin or in $PACKYARD_POSTGRES_BIN")

var (
	pgOnce    sync.Once
	pgCluster *postgresCluster
	pgErr     error // why the cluster did not start
	pgMissing bool  // pgErr means the engine is missing, not broken
)

// postgresCluster is the cluster of this test binary.
type postgresCluster struct {
	bin  string              // directory of initdb, pg_ctl, createdb, dropdb
	dir  string              // the temporary directory
	port int                 // TCP port on 127.0.0.1
	cred *syscall.Credential // who runs initdb and pg_ctl; nil: this process's user

	mu  sync.Mutex // serialises pg_ctl and database creation
	dbs int        // databases created so far, for names
}

// Postgres returns the DSN of a new, empty database in this test binary's
// private PostgreSQL cluster, starting the cluster on first use. The
// database is dropped when t ends. If PostgreSQL is not installed the test
// is skipped (failed under PACKYARD_REQUIRE_REAL=1).
func Postgres(t testing.TB) string {
	t.Helper()
	c := postgresFor(t)
	c.mu.Lock()
	c.dbs++
	name := fmt.Sprintf("packyard_%d", c.dbs)
	out, err := c.run(false, "createdb", "-h", c.dir, "-p", strconv.Itoa(c.port), "-U", pgUser, name)
	c.mu.Unlock()
	if err != nil {
		t.Fatalf("createdb %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		// FORCE ends connections a test left open.
		if out, err := c.run(false, "dropdb", "-h", c.dir, "-p", strconv.Itoa(c.port), "-U", pgUser,
			"--if-exists", "--force", name); err != nil {
			t.Logf("dropdb %s: %v\n%s", name, err, out)
		}
	})
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", pgUser, c.port, name)
}

// PostgresRestart restarts the cluster (fast shutdown: sessions are ended,
// as when an operator restarts the server) and returns once it accepts
// connections again. Every test using the cluster sees the outage, so a
// test that calls it must not run in parallel with others.
func PostgresRestart(t testing.TB) {
	t.Helper()
	postgresFor(t).ctl(t, "restart", "-m", "fast")
}

// PostgresStop stops the cluster (fast shutdown) until PostgresStart. The
// same caveat as for PostgresRestart applies.
func PostgresStop(t testing.TB) {
	t.Helper()
	postgresFor(t).ctl(t, "stop", "-m", "fast")
}

// PostgresStart starts the cluster PostgresStop stopped and returns once it
// accepts connections.
func PostgresStart(t testing.TB) {
	t.Helper()
	postgresFor(t).ctl(t, "start")
}

// postgresFor returns the running cluster, starting it if needed, or ends
// the test.
func postgresFor(t testing.TB) *postgresCluster {
	t.Helper()
	pgOnce.Do(func() {
		pgCluster, pgMissing, pgErr = startPostgres()
	})
	switch {
	case pgMissing:
		Unavailable(t, "PostgreSQL: %v", pgErr)
	case pgErr != nil:
		t.Fatalf("start PostgreSQL: %v", pgErr)
	}
	return pgCluster
}

// ctl runs pg_ctl with the options every action needs: wait until done,
// and send the server's output to the log.
func (c *postgresCluster) ctl(t testing.TB, action string, args ...string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	args = append([]string{"-D", c.data(), "-l", c.log(), "-w", "-t", "120", action}, args...)
	if out, err := c.run(true, "pg_ctl", args...); err != nil {
		t.Fatalf("pg_ctl %s: %v\n%s\nserver log:\n%s", action, err, out, c.logTail())
	}
}

func (c *postgresCluster) data() string { return filepath.Join(c.dir, "data") }
func (c *postgresCluster) log() string  { return filepath.Join(c.dir, "log") }

// logTail returns the end of the server's log.
func (c *postgresCluster) logTail() string {
	b, _ := os.ReadFile(c.log())
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// run runs a program of the PostgreSQL bin directory, as the server's user
// when asServer is set, and returns its output.
func (c *postgresCluster) run(asServer bool, prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.dir // readable by the server's user, unlike root's home
	if asServer && c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	// pg_ctl gets -l, so the server does not inherit these pipes and
	// CombinedOutput returns when pg_ctl does.
	return cmd.CombinedOutput()
}

// startPostgres creates and starts the cluster, and registers its removal
// with Main. missing is set when the engine cannot be had on this machine.
func startPostgres() (c *postgresCluster, missing bool, err error) {
	bin, err := findPostgres()
	if err != nil {
		return nil, true, err
	}
	c = &postgresCluster{bin: bin}
	parent := os.TempDir()
	if os.Geteuid() == 0 {
		u, err := user.Lookup(pgUser)
		if err != nil {
			return nil, true, fmt.Errorf("running as root, and PostgreSQL refuses to: no %s user to run it as: %w", pgUser, err)
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return nil, false, fmt.Errorf("user %s: %w", pgUser, err)
		}
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
		parent = "/tmp" // $TMPDIR may be under a home the server's user cannot enter
	}
	reapPostgres(c, parent)
	if c.dir, err = os.MkdirTemp(parent, "packyard-pg-"); err != nil {
		return nil, false, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(c.dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(c.dir, "owner"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, false, err
	}
	if err := os.Chmod(c.dir, 0o755); err != nil {
		return nil, false, err
	}
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return nil, false, err
		}
	}
	// --no-sync: initdb's own files need not survive a crash; the server
	// runs with fsync on.
	if out, err := c.run(true, "initdb", "-D", c.data(), "-U", pgUser, "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, false, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	conf, err := os.ReadFile(filepath.Join(c.data(), "postgresql.conf"))
	if err != nil {
		return nil, false, err
	}
	// Another process may take the free port before the server does:
	// try a few.
	for attempt := 1; ; attempt++ {
		if c.port, err = pgFreePort(); err != nil {
			return nil, false, err
		}
		settings := fmt.Sprintf(`
# packyard test cluster
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 300
fsync = on
logging_collector = off
`, c.port, c.dir)
		if err := os.WriteFile(filepath.Join(c.data(), "postgresql.conf"), append(conf, settings...), 0o600); err != nil {
			return nil, false, err
		}
		out, err := c.run(true, "pg_ctl", "-D", c.data(), "-l", c.log(), "-w", "-t", "120", "start")
		if err == nil {
			break
		}
		if attempt == 3 {
			return nil, false, fmt.Errorf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, c.logTail())
		}
	}
	ok = true
	atExit(func() {
		// immediate: nothing to keep, and no checkpoint to wait for.
		c.mu.Lock()
		defer c.mu.Unlock()
		_, _ = c.run(true, "pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
		os.RemoveAll(c.dir)
	})
	return c, false, nil
}

// reapPostgres stops and removes the clusters under parent left by test
// binaries that are gone. c supplies the programs and the user to run them.
func reapPostgres(c *postgresCluster, parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, "packyard-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner"))
		if err != nil {
			continue // being set up, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue // its owner runs
		}
		old := &postgresCluster{bin: c.bin, dir: dir, cred: c.cred}
		_, _ = old.run(true, "pg_ctl", "-D", old.data(), "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	}
}

// pgFreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func pgFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findPostgres returns the directory holding the PostgreSQL programs: the
// one $PACKYARD_POSTGRES_BIN names, that of initdb on PATH (symbolic links
// followed), or the newest /usr/lib/postgresql/*/bin.
func findPostgres() (string, error) {
	var dirs []string
	if d := os.Getenv("PACKYARD_POSTGRES_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return v
	}
	slices.SortFunc(found, func(a, b string) int { return version(b) - version(a) })
	dirs = append(dirs, found...)
	for _, d := range dirs {
		complete := true
		for _, prog := range []string{"initdb", "pg_ctl", "postgres", "createdb", "dropdb"} {
			if fi, err := os.Stat(filepath.Join(d, prog)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				complete = false
				break
			}
		}
		if complete {
			return d, nil
		}
	}
	return "", errNoPostgres
}
