// Package corpus keeps a benchmark's generated package files in a
// directory between runs: it builds, in parallel, the files that the
// directory's MANIFEST does not list yet and hashes them all.
//
// A generator whose corpus of n packages is a prefix of every larger one
// with the same seed (debtest.Corpus, archtest.Corpus) lets a corpus grow
// in place, and a smaller run reuse a larger one's files.
//
// Layout of a corpus directory:
//
//	DIR/
//	  MANIFEST   the file names, one a line, in corpus order; written
//	             last, so it names only complete files
//	  NAME …     the package files
package corpus

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// File is one package file of a corpus.
type File struct {
	Name   string // file name
	Path   string
	SHA256 string // hex
	Size   int64
}

// Load returns the files names[i] under dir, building with build(i) those
// that dir/MANIFEST does not list yet. The manifest is trusted only as
// far as it agrees with names; past the first difference (another seed or
// generator) every file is rebuilt. logf reports what is built.
func Load(dir string, names []string, build func(i int) ([]byte, error), logf func(format string, args ...any)) ([]File, error) {
	n := len(names)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	manifest := filepath.Join(dir, "MANIFEST")
	have, err := readLines(manifest)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	valid := 0
	for valid < len(have) && valid < n && have[valid] == names[valid] {
		valid++
	}
	if valid < min(len(have), n) {
		logf("corpus %s was built with another seed or generator: rebuilding it", dir)
		valid = 0
	}
	if valid < n {
		logf("building %d package files in %s", n-valid, dir)
		err := parallel(n-valid, func(i int) error {
			i += valid
			b, err := build(i)
			if err == nil {
				err = writeAtomic(filepath.Join(dir, names[i]), b)
			}
			if err != nil {
				return fmt.Errorf("build %s: %w", names[i], err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if err := writeAtomic(manifest, []byte(strings.Join(names, "\n")+"\n")); err != nil {
			return nil, err
		}
	}
	out := make([]File, n)
	err = parallel(n, func(i int) error {
		f := File{Name: names[i], Path: filepath.Join(dir, names[i])}
		b, err := os.ReadFile(f.Path)
		if err != nil {
			return fmt.Errorf("corpus: %w (remove %s to rebuild)", err, manifest)
		}
		sum := sha256.Sum256(b)
		f.SHA256, f.Size = hex.EncodeToString(sum[:]), int64(len(b))
		out[i] = f
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// parallel runs do(0) … do(n-1) on every core and returns the first
// error, after which no new index is started.
func parallel(n int, do func(i int) error) error {
	var wg sync.WaitGroup
	var next atomic.Int64
	var first atomic.Pointer[error]
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil {
					return
				}
				if err := do(i); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}
