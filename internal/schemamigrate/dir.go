package schemamigrate

import (
	"fmt"
	"io/fs"
	"path"
	"sync"

	atlasmigrate "ariga.io/atlas/sql/migrate"

	"github.com/peonhq/peon/migrations"
)

// embeddedDirs holds the embedded directories, read once.
var embeddedDirs sync.Map // directory name -> *atlasmigrate.MemDir

// EmbeddedDir returns the embedded Atlas directory migrations/<name>
// ("sqlite", "postgres"), read once.
func EmbeddedDir(name string) (atlasmigrate.Dir, error) {
	if d, ok := embeddedDirs.Load(name); ok {
		return d.(atlasmigrate.Dir), nil
	}
	return loadDir(migrations.FS, name)
}

func loadDir(fsys fs.FS, name string) (atlasmigrate.Dir, error) {
	entries, err := fs.ReadDir(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	dir := &atlasmigrate.MemDir{}
	for _, e := range entries {
		b, err := fs.ReadFile(fsys, path.Join(name, e.Name()))
		if err != nil {
			return nil, err
		}
		if err := dir.WriteFile(e.Name(), b); err != nil {
			return nil, err
		}
	}
	embeddedDirs.Store(name, dir)
	return dir, nil
}
