package main

import (
	"github.com/packyard/packyard/bench/internal/corpus"
	"github.com/packyard/packyard/internal/format/arch/archtest"
)

// pkgFile is one package of the corpus; its Name is the file name,
// NAME-VERSION-ARCH.pkg.tar.EXT.
type pkgFile struct {
	corpus.File
	Pkg     string // pkgname
	Version string // [epoch:]pkgver-pkgrel
	Arch    string // x86_64, aarch64 or any
}

// entry is the package's directory in a database, NAME-VERSION.
func (f pkgFile) entry() string { return f.Pkg + "-" + f.Version }

// loadCorpus returns the first n packages of archtest.Corpus(n, seed) as
// files under dir, building those that are not there yet (see package
// corpus). Corpus(n, seed) is a prefix of Corpus(m, seed) for m > n, so a
// corpus grows in place and a smaller run reuses a larger one's files.
func loadCorpus(cfg *config, dir string, n int, seed int64) ([]pkgFile, error) {
	specs := archtest.Corpus(n, seed)
	names := make([]string, n)
	for i, s := range specs {
		names[i] = archtest.FileName(s)
	}
	files, err := corpus.Load(dir, names, func(i int) ([]byte, error) { return archtest.Build(specs[i]) }, cfg.logf)
	if err != nil {
		return nil, err
	}
	out := make([]pkgFile, n)
	for i, s := range specs {
		out[i] = pkgFile{File: files[i], Pkg: s.Name, Version: s.Version, Arch: s.Arch}
	}
	return out, nil
}

// files returns the corpus files of pkgs.
func files(pkgs []pkgFile) []corpus.File {
	out := make([]corpus.File, len(pkgs))
	for i, p := range pkgs {
		out[i] = p.File
	}
	return out
}
