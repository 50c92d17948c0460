package sink

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// local is a sink's target in a local directory: each file is written
// under a temporary name in its partition's directory, fsynced and renamed,
// and the directories touched are fsynced before the seal is recorded.
type local struct {
	root string // absolute
	dirs map[string]bool
}

func newLocal(dir string) (*local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	return &local{root: abs, dirs: map[string]bool{}}, nil
}

func (l *local) key() string { return "file://" + filepath.ToSlash(l.root) }

func (l *local) stage(rel string) (*os.File, error) {
	dir := filepath.Join(l.root, filepath.FromSlash(rel))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return os.CreateTemp(dir, ".part-*"+tmpSuffix)
}

func (l *local) publish(_ context.Context, f *os.File, rel string) error {
	tmp := f.Name()
	if err := f.Sync(); err != nil {
		l.discard(f)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	final := filepath.Join(l.root, filepath.FromSlash(rel))
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return err
	}
	// The file's directory holds the rename; its parents hold the
	// directories a new partition made.
	dir := filepath.Dir(final)
	l.dirs[dir], l.dirs[filepath.Dir(dir)], l.dirs[l.root] = true, true, true
	return nil
}

func (l *local) done(context.Context) error {
	for dir := range l.dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
		delete(l.dirs, dir)
	}
	return nil
}

func (l *local) discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

func (l *local) list(_ context.Context, fn func(rel string)) error {
	return filepath.WalkDir(l.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if strings.HasSuffix(e.Name(), tmpSuffix) {
			return os.Remove(p)
		}
		rel, err := filepath.Rel(l.root, p)
		if err != nil {
			return err
		}
		fn(filepath.ToSlash(rel))
		return nil
	})
}

func (l *local) remove(_ context.Context, rel string) error {
	return os.Remove(filepath.Join(l.root, filepath.FromSlash(rel)))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
