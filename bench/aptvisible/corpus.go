package main

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

	"github.com/packyard/packyard/internal/format/deb/debtest"
)

// debFile is one package of the corpus.
type debFile struct {
	Name    string // file name, NAME_VERSION_ARCH.deb (version without epoch)
	Path    string
	Package string
	Version string
	Arch    string
	SHA256  string
	Size    int64
}

// fileName is the name dpkg-name would give a package.
func fileName(s debtest.Spec) string {
	v := s.Version
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return s.Package + "_" + v + "_" + s.Architecture + ".deb"
}

// loadCorpus returns the first n packages of debtest.Corpus(n, seed) as
// files under dir, building (in parallel) those that dir/MANIFEST does not
// list yet. Corpus(n, seed) is a prefix of Corpus(m, seed) for m > n, so a
// corpus grows in place and a smaller run reuses a larger one's files.
func loadCorpus(cfg *config, dir string, n int, seed int64) ([]debFile, error) {
	specs := debtest.Corpus(n, seed)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	manifest := filepath.Join(dir, "MANIFEST")
	have, err := readLines(manifest)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	// The manifest is only trusted if it names the files this seed gives.
	valid := 0
	for valid < len(have) && valid < n && have[valid] == fileName(specs[valid]) {
		valid++
	}
	if valid < min(len(have), n) {
		cfg.logf("corpus %s was built with another seed or generator: rebuilding it", dir)
		valid = 0
	}
	if valid < n {
		cfg.logf("building %d .deb files (debtest.Corpus, seed %d) in %s", n-valid, seed, dir)
		if err := buildDebs(dir, specs[valid:]); err != nil {
			return nil, err
		}
		names := make([]string, n)
		for i, s := range specs {
			names[i] = fileName(s)
		}
		if err := writeLines(manifest, names); err != nil {
			return nil, err
		}
	}
	out := make([]debFile, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				s := specs[i]
				f := debFile{Name: fileName(s), Package: s.Package, Version: s.Version, Arch: s.Architecture}
				f.Path = filepath.Join(dir, f.Name)
				b, err := os.ReadFile(f.Path)
				if err != nil {
					errs[i] = fmt.Errorf("corpus: %w (remove %s to rebuild)", err, manifest)
					continue
				}
				sum := sha256.Sum256(b)
				f.SHA256, f.Size = hex.EncodeToString(sum[:]), int64(len(b))
				out[i] = f
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// buildDebs writes a .deb for each spec into dir, in parallel.
func buildDebs(dir string, specs []debtest.Spec) error {
	var wg sync.WaitGroup
	var next atomic.Int64
	var first atomic.Pointer[error]
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(specs) || first.Load() != nil {
					return
				}
				b, err := debtest.Build(specs[i])
				if err == nil {
					err = writeAtomic(filepath.Join(dir, fileName(specs[i])), b)
				}
				if err != nil {
					err = fmt.Errorf("build %s: %w", specs[i].Package, err)
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

func writeLines(path string, lines []string) error {
	return writeAtomic(path, []byte(strings.Join(lines, "\n")+"\n"))
}
