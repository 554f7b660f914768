package pglocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrBinariesNotFound means no PostgreSQL server binaries were found on this machine.
var ErrBinariesNotFound = errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql/*/bin; install them, e.g. `apt-get install postgresql-15`, or set CAIRN_DATABASE_URL to an existing database")

// Config describes a local PostgreSQL server.
type Config struct {
	// Dir holds everything of the server: data/ (the cluster), sock/ (unix socket) and
	// postgres.log. An existing initialised data directory is reused, keeping its data.
	Dir string
	// Port, when non-zero, makes the server also listen on 127.0.0.1:Port.
	Port int
	// Fsync keeps PostgreSQL's default durability. Tests turn it off for speed (-F);
	// benchmarks and dev mode keep it on.
	Fsync bool
	// Settings are extra server settings (-c name=value).
	Settings map[string]string
}

// Server is a running local PostgreSQL.
type Server struct {
	cfg     Config
	bin     string
	dataDir string
	sockDir string
	logFile string
	cred    *syscall.Credential
}

// FindBinaries returns the directory holding initdb and pg_ctl.
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	return "", ErrBinariesNotFound
}

func versionOf(initdbPath string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdbPath))))
	return v
}

// Start initialises the data directory if needed and starts the server, waiting until it
// accepts connections.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pglocal: Dir is required")
	}
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		bin:     bin,
		dataDir: filepath.Join(dir, "data"),
		sockDir: filepath.Join(dir, "sock"),
		logFile: filepath.Join(dir, "postgres.log"),
	}
	if len(s.sockDir)+len("/.s.PGSQL.65535") > 107 {
		return nil, fmt.Errorf("pglocal: socket directory %s is too long for a unix socket path", s.sockDir)
	}
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pglocal: running as root, and PostgreSQL refuses to run as root; need the 'postgres' system user: %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	for _, d := range []string{dir, s.sockDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("pglocal: %w", err)
		}
		if uid >= 0 {
			if err := os.Chown(d, uid, gid); err != nil {
				return nil, fmt.Errorf("pglocal: %w", err)
			}
		}
	}
	if uid >= 0 {
		if err := ensureTraversable(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		args := []string{"-D", s.dataDir, "-A", "trust", "-E", "UTF8", "--locale=C", "-U", "postgres"}
		if !cfg.Fsync {
			args = append(args, "--no-sync")
		}
		if err := s.run(ctx, "initdb", args...); err != nil {
			return nil, err
		}
	}
	opts := []string{"-k", s.sockDir}
	if cfg.Port != 0 {
		opts = append(opts, "-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(cfg.Port))
	} else {
		opts = append(opts, "-c", "listen_addresses=")
	}
	if !cfg.Fsync {
		opts = append(opts, "-F", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	keys := make([]string, 0, len(cfg.Settings))
	for k := range cfg.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		opts = append(opts, "-c", k+"="+cfg.Settings[k])
	}
	// pg_ctl passes -o to postgres through a shell; every value here is ours, quote anyway.
	quoted := make([]string, len(opts))
	for i, o := range opts {
		quoted[i] = "'" + strings.ReplaceAll(o, "'", `'\''`) + "'"
	}
	if err := s.run(ctx, "pg_ctl", "-D", s.dataDir, "-l", s.logFile, "-w", "-t", "60",
		"-o", strings.Join(quoted, " "), "start"); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, s.logTail())
	}
	return s, nil
}

// ensureTraversable makes sure the postgres user can reach dir's children.
func ensureTraversable(dir string) error {
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pglocal: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pglocal: directory %s is not traversable by the postgres user (mode %v); choose a directory under a world-traversable parent", d, fi.Mode().Perm())
		}
	}
	return nil
}

// URL returns a connection URL for database db over the unix socket.
func (s *Server) URL(db string) string {
	q := url.Values{}
	q.Set("host", s.sockDir)
	q.Set("sslmode", "disable")
	if s.cfg.Port != 0 {
		q.Set("port", strconv.Itoa(s.cfg.Port))
	}
	return (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// TCPURL returns a loopback TCP connection URL for db; only valid when Config.Port is set.
func (s *Server) TCPURL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.cfg.Port, db)
}

// DataDir returns the cluster's data directory.
func (s *Server) DataDir() string { return s.dataDir }

// BinDir returns the directory of the server binaries in use.
func (s *Server) BinDir() string { return s.bin }

// Stop shuts the server down (fast mode: open sessions are ended, data is kept).
func (s *Server) Stop(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.dataDir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return s.run(ctx, "pg_ctl", "-D", s.dataDir, "-m", "fast", "-w", "-t", "60", "stop")
}

// Kill stops the server immediately (immediate mode, like a crash); the next start recovers.
func (s *Server) Kill(ctx context.Context) error {
	return s.run(ctx, "pg_ctl", "-D", s.dataDir, "-m", "immediate", "-w", "stop")
}

// Restart starts a stopped server again with the same settings.
func (s *Server) Restart(ctx context.Context) error {
	_, err := Start(ctx, s.cfg)
	return err
}

func (s *Server) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
		cmd.Dir = "/"
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pglocal: %s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return ""
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return "postgres log (tail):\n" + string(b)
}

// WaitReady is a small helper for callers that restart the server: it polls ping until it
// succeeds or ctx ends.
func WaitReady(ctx context.Context, ping func(context.Context) error) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if err := ping(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
