package schema

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers the pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/cairn-io/cairn/migrations"
)

// Up applies every pending migration. It is a no-op on an up-to-date database.
func Up(ctx context.Context, databaseURL string) error {
	return run(ctx, databaseURL, func(m *migrate.Migrate) error { return m.Up() })
}

// Down reverts every migration, leaving an empty schema.
func Down(ctx context.Context, databaseURL string) error {
	return run(ctx, databaseURL, func(m *migrate.Migrate) error { return m.Down() })
}

// Migrate applies or reverts migrations until the schema is at version (0: empty). Tests use
// it to write rows in an older schema before migrating them forward.
func Migrate(ctx context.Context, databaseURL string, version uint) error {
	if version == 0 {
		return Down(ctx, databaseURL)
	}
	return run(ctx, databaseURL, func(m *migrate.Migrate) error { return m.Migrate(version) })
}

// Version reports the applied schema version and whether a migration failed half-way.
func Version(ctx context.Context, databaseURL string) (version uint, dirty bool, err error) {
	err = run(ctx, databaseURL, func(m *migrate.Migrate) error {
		version, dirty, err = m.Version()
		return err
	})
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	return version, dirty, err
}

func run(ctx context.Context, databaseURL string, f func(*migrate.Migrate) error) error {
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return fmt.Errorf("schema: open embedded migrations: %w", err)
	}
	u, err := driverURL(databaseURL)
	if err != nil {
		return err
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, u)
	if err != nil {
		return fmt.Errorf("schema: connect: %w", err)
	}
	defer m.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			select {
			case m.GracefulStop <- true:
			default:
			}
		case <-done:
		}
	}()
	if err := f(m); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("schema: migrate: %w", err)
	}
	return ctx.Err()
}

// driverURL turns a postgres:// URL into golang-migrate's pgx5:// form.
func driverURL(databaseURL string) (string, error) {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "", fmt.Errorf("schema: database url: %w", err)
	}
	switch u.Scheme {
	case "postgres", "postgresql", "pgx5":
		u.Scheme = "pgx5"
	default:
		return "", fmt.Errorf("schema: database url: scheme %q is not postgres://", u.Scheme)
	}
	return u.String(), nil
}
