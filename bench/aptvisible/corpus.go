package main

import (
	"strings"

	"github.com/packyard/packyard/bench/internal/corpus"
	"github.com/packyard/packyard/internal/format/deb/debtest"
)

// debFile is one package of the corpus; its Name is the file name,
// NAME_VERSION_ARCH.deb (version without epoch).
type debFile struct {
	corpus.File
	Package string
	Version string
	Arch    string
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
// files under dir, building those that are not there yet (see package
// corpus). Corpus(n, seed) is a prefix of Corpus(m, seed) for m > n, so a
// corpus grows in place and a smaller run reuses a larger one's files.
func loadCorpus(cfg *config, dir string, n int, seed int64) ([]debFile, error) {
	specs := debtest.Corpus(n, seed)
	names := make([]string, n)
	for i, s := range specs {
		names[i] = fileName(s)
	}
	files, err := corpus.Load(dir, names, func(i int) ([]byte, error) { return debtest.Build(specs[i]) }, cfg.logf)
	if err != nil {
		return nil, err
	}
	out := make([]debFile, n)
	for i, s := range specs {
		out[i] = debFile{File: files[i], Package: s.Package, Version: s.Version, Arch: s.Architecture}
	}
	return out, nil
}

// files returns the corpus files of debs.
func files(debs []debFile) []corpus.File {
	out := make([]corpus.File, len(debs))
	for i, d := range debs {
		out[i] = d.File
	}
	return out
}
