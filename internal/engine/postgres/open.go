package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/peonhq/peon/internal/engine"
)

// Open opens a pool on url; with readOnly, every session starts with
// default_transaction_read_only, so that no transaction writes.
func (Engine) Open(ctx context.Context, url string, readOnly bool) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", engine.Redact(url), err)
	}
	if readOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", engine.Redact(url), err)
	}
	return db, nil
}

// OpenExisting opens a read-only pool on url, as Open with readOnly does.
func (e Engine) OpenExisting(ctx context.Context, url string) (*sql.DB, error) {
	return e.Open(ctx, url, true)
}

// BeforeWrite does nothing: a server has no mode to switch.
func (Engine) BeforeWrite(context.Context, *sql.DB) error { return nil }
