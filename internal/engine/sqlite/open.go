package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/peonhq/peon/internal/engine"
	"github.com/peonhq/peon/internal/sqlx"
)

// dbFileName is the database file persistence.OpenDir keeps in its
// directory, for the hint of an error.
const dbFileName = "peon.db"

// busyTimeout is how long a SQLite connection waits for another process's
// write lock before it gives up.
const busyTimeout = 30 * time.Second

// sqlitePragmas are set on every connection: foreign keys (ent needs
// them), waiting for other writers instead of failing, NORMAL sync (safe
// in WAL mode), UTC timestamps in SQLite's text layout that compare
// correctly in SQL, and IMMEDIATE write transactions.
var sqlitePragmas = "_pragma=foreign_keys(1)" +
	"&_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")" +
	"&_pragma=synchronous(NORMAL)" +
	"&_time_format=sqlite&_timezone=UTC&_txlock=immediate"

// sqliteReadOnly is added to the pragmas of a read-only store's
// connections. query_only rather than SQLite's mode=ro: a mode=ro
// connection leaves the -wal and -shm files it created behind, while the
// last read-write connection to close removes them.
const sqliteReadOnly = "&_pragma=query_only(1)"

// Open opens a pool on the database file at dsn, creating it with mode
// 0600 if absent (with readOnly, refusing it with engine.ErrAbsent
// instead, and every connection refuses to write), or, in memory, a
// private database on one connection, which lives as long as it.
func (e Engine) Open(ctx context.Context, dsn string, readOnly bool) (*sql.DB, error) {
	if e.Memory {
		// A private in-memory database lives as long as its one connection.
		db, err := sql.Open("sqlite", "file:peon-"+randomName()+"?mode=memory&"+sqlitePragmas)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		return db, nil
	}
	pragmas := sqlitePragmas
	if readOnly {
		if err := checkSQLiteFile(dsn, true); err != nil {
			return nil, err
		}
		pragmas += sqliteReadOnly
	} else if err := prepareSQLiteFile(dsn); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn+"?"+pragmas)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	if err := checkSQLite(ctx, db, dsn); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// OpenExisting opens the database file at dsn read-only, as Open with
// readOnly does, without creating or changing it. It returns a nil
// *sql.DB when there is nothing to read: a file that does not exist, or
// a fresh in-memory database.
func (e Engine) OpenExisting(ctx context.Context, dsn string) (*sql.DB, error) {
	if e.Memory {
		return nil, nil
	}
	if err := checkSQLiteFile(dsn, false); err != nil {
		return nil, err
	}
	if _, err := os.Stat(dsn); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	db, err := sql.Open("sqlite", dsn+"?"+sqlitePragmas+sqliteReadOnly)
	if err != nil {
		return nil, err
	}
	if err := checkSQLite(ctx, db, dsn); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// BeforeWrite switches a database file to write-ahead logging, once; an
// in-memory database has nothing to switch.
func (e Engine) BeforeWrite(ctx context.Context, db *sql.DB) error {
	if e.Memory {
		return nil
	}
	if err := enableWAL(ctx, db); err != nil {
		return fmt.Errorf("enable WAL: %w", err)
	}
	return nil
}

// checkSQLiteFile refuses, before SQLite opens it, a path that is not a
// regular file: SQLite would fail on a directory, a named pipe, a device
// or a socket with a bare "disk I/O error" or "unable to open", or block
// on a FIFO. A missing file is refused when mustExist, and otherwise left
// to the caller.
func checkSQLiteFile(path string, mustExist bool) error {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && mustExist:
		return fmt.Errorf("open %s: %w", path, engine.ErrAbsent)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("open %s: %w", path, err)
	case info.IsDir():
		return fmt.Errorf("open %s: is a directory, not a database file (use OpenDir or %s)", path, filepath.Join(path, dbFileName))
	case !info.Mode().IsRegular():
		return fmt.Errorf("open %s: is %s, not a database file; give the path of a SQLite file", path, fileKind(info.Mode()))
	}
	return nil
}

// fileKind names the type of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeIrregular != 0:
		return "a file of unknown type"
	}
	return "not a regular file"
}

// prepareSQLiteFile creates the database file with mode 0600 (SQLite gives
// its -wal and -shm files the same mode), and turns the usual mistakes into
// clear errors.
func prepareSQLiteFile(path string) error {
	if err := checkSQLiteFile(path, false); err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return checkWritable(path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // another process created it first
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open %s: the directory %s does not exist", path, filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("open %s: create database file: %w", path, err)
	}
	return f.Close()
}

// checkWritable refuses a database file this process may not write, and
// one in a directory it may not write while SQLite would have to create
// the -wal or -shm file there: SQLite itself would open the file read-only
// without a word and fail at the first write.
func checkWritable(path string) error {
	if err := writable(path); err != nil {
		return fmt.Errorf("open %s: the database file is not writable (%v); peon needs to write to it", path, err)
	}
	for _, side := range []string{path + "-wal", path + "-shm"} {
		if _, err := os.Stat(side); errors.Is(err, fs.ErrNotExist) {
			if err := writable(filepath.Dir(path)); err != nil {
				return fmt.Errorf("open %s: the directory %s is not writable (%v); SQLite needs to create the database's -wal and -shm files there", path, filepath.Dir(path), err)
			}
			break
		}
	}
	return nil
}

// checkSQLite makes sure the file is a SQLite database we can read.
func checkSQLite(ctx context.Context, db *sql.DB, path string) error {
	if _, err := sqlx.QueryInt64(ctx, db, "PRAGMA schema_version"); err != nil {
		if strings.Contains(err.Error(), "not a database") || strings.Contains(err.Error(), "malformed") {
			return fmt.Errorf("open %s: the file is not a SQLite database (or is corrupt): %w", path, err)
		}
		return fmt.Errorf("open %s: %w", path, err)
	}
	return nil
}

// enableWAL switches the file to write-ahead logging once; the mode
// persists in the file. Concurrent first opens may find the file busy while
// another switches it, so it retries.
func enableWAL(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
		if err == nil && strings.EqualFold(mode, "wal") {
			return nil
		}
		if err == nil {
			err = db.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode)
			if err == nil && strings.EqualFold(mode, "wal") {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("journal mode is %q", mode)
			}
		}
		if time.Now().After(deadline) || !isBusy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// isBusy reports whether err is SQLite's "database is locked" or "busy".
func isBusy(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked") || strings.Contains(msg, "(5)") || strings.Contains(msg, "(517)")
}

func randomName() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
