package archtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// corpusEpoch is the build date of the first corpus package; later ones
// are a few minutes apart.
var corpusEpoch = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	corpusArches       = []string{"x86_64", "x86_64", "any", "aarch64"}
	corpusCompressions = []string{"zst", "xz", "gz"}
	corpusPackagers    = []string{
		"Alice Example <alice@example.com>",
		"Bob Builder <bob@example.org>",
		"Carol Packager <carol@example.net>",
		"", // makepkg's "Unknown Packager"
	}
	corpusLicenses = []string{"GPL-3.0-or-later", "MIT", "Apache-2.0", "BSD-3-Clause", "LGPL-2.1-only", "LicenseRef-custom"}
	corpusGroups   = []string{"packyard-test", "base-devel", "xorg-apps", "kde-applications"}
	// corpusLibs are dependencies of architecture-specific packages, some
	// with version constraints or sonames.
	corpusLibs  = []string{"openssl>=3.0", "zlib", "gcc-libs", "libsystemd.so=0-64", "curl>=8.0", "xz<6", "zstd=1.5.6"}
	corpusTools = []string{"python>=3.11", "bash", "perl", "sh"}
	corpusOpts  = []string{"python: for scripts", "bash-completion: for shell completion", "man-db: to read the manual pages"}
	corpusMake  = [][]string{{"cmake", "git"}, {"go"}, {"meson", "ninja"}, {"rust", "cargo>=1.70"}}
)

// Corpus returns n distinct, realistic package specs named "pkg-00000",
// "pkg-00001", …: architectures x86_64 (half), any and aarch64; versions
// with epochs (a fifth), letters and git revisions in pkgver, and
// pkgrels such as "2" or "1.1"; depends with version constraints and
// sonames ("glibc>=2.38", "libsystemd.so=0-64") and on earlier corpus
// packages; optdepends ("python: for scripts"), makedepends,
// checkdepends, provides, conflicts and replaces; one or two licenses;
// groups; a backed-up configuration file; a pkgbase that differs from the
// name for a quarter (split packages). Each holds a program, its
// configuration, documentation, a license, a symlink, an empty directory,
// a library directory next to one whose name extends it ("NAME" and
// "NAME-data", which bsdtar's sorted listing orders differently than
// makepkg's archive), and every fourth a systemd unit whose name holds a
// backslash ("\x2d"). Compression rotates zst, xz, gz. The same n and
// seed always give the same specs.
func Corpus(n int, seed int64) []Spec {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x3c6ef372fe94f82b))
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	specs := make([]Spec, n)
	for i := range specs {
		name := fmt.Sprintf("pkg-%05d", i)
		pkgver := fmt.Sprintf("%d.%d.%d", rng.IntN(10), rng.IntN(30), rng.IntN(100))
		switch rng.IntN(6) {
		case 0:
			pkgver += "rc" + fmt.Sprint(1+rng.IntN(3))
		case 1:
			pkgver += fmt.Sprintf(".r%d.g%07x", rng.IntN(500), rng.Uint32()&0xfffffff)
		case 2:
			pkgver += "_" + fmt.Sprint(rng.IntN(9))
		}
		pkgrel := fmt.Sprint(1 + rng.IntN(5))
		if rng.IntN(8) == 0 {
			pkgrel += ".1"
		}
		version := pkgver + "-" + pkgrel
		if rng.IntN(5) == 0 {
			version = fmt.Sprintf("%d:%s", 1+rng.IntN(3), version)
		}
		arch := pick(corpusArches)
		s := Spec{
			Name:        name,
			Version:     version,
			Desc:        fmt.Sprintf("Generated test package number %d for pacman repositories", i),
			URL:         "https://example.com/projects/" + name,
			Packager:    corpusPackagers[i%len(corpusPackagers)],
			Arch:        arch,
			BuildDate:   corpusEpoch.Add(time.Duration(i) * 7 * time.Minute),
			Licenses:    []string{pick(corpusLicenses)},
			Compression: corpusCompressions[i%len(corpusCompressions)],
		}
		if i%4 == 1 {
			s.Base = fmt.Sprintf("pkgbase-%05d", i-i%8)
		}
		if rng.IntN(3) == 0 {
			s.Licenses = append(s.Licenses, "LicenseRef-"+name)
		}
		if rng.IntN(3) == 0 {
			s.Groups = []string{pick(corpusGroups)}
			if rng.IntN(2) == 0 {
				s.Groups = append(s.Groups, "packyard-all")
			}
		}
		if arch == "any" {
			s.Depends = []string{pick(corpusTools)}
		} else {
			s.Depends = []string{"glibc>=2.38", pick(corpusLibs)}
		}
		if i > 0 && rng.IntN(3) == 0 {
			s.Depends = append(s.Depends, fmt.Sprintf("pkg-%05d>=0.1", rng.IntN(i)))
		}
		if rng.IntN(2) == 0 {
			s.OptDepends = []string{pick(corpusOpts)}
		}
		if rng.IntN(2) == 0 {
			s.MakeDepends = slices.Clone(corpusMake[rng.IntN(len(corpusMake))])
		}
		if rng.IntN(4) == 0 {
			s.CheckDepends = []string{"python-pytest"}
		}
		if rng.IntN(4) == 0 {
			s.Provides = []string{name + "-virtual=" + pkgver}
			if arch != "any" {
				s.Provides = append(s.Provides, "lib"+name+".so=1-64")
			}
		}
		if rng.IntN(5) == 0 {
			s.Conflicts = []string{name + "-git"}
			s.Replaces = []string{name + "-legacy<1.0"}
		}
		conf := "etc/" + name + ".conf"
		s.Backup = []string{conf}
		s.Files = []File{
			{Path: "usr/bin/" + name, Body: []byte("#!/bin/sh\necho " + name + " " + version + "\n"), Mode: 0o755},
			{Path: "usr/bin/" + name + "-alias", Link: name},
			{Path: conf, Body: []byte("# configuration of " + name + "\nenabled = true\n")},
			{Path: "usr/share/doc/" + name + "/README", Body: []byte(name + " is a generated package.\n")},
			{Path: "usr/share/licenses/" + name + "/LICENSE", Body: []byte("Copyright 2024 Example\n")},
			{Path: "usr/lib/" + name + "/plugin.so", Body: []byte("\x7fELF not really\n"), Mode: 0o755},
			{Path: "usr/lib/" + name + "-data/table", Body: []byte("1 2 3\n")},
			{Path: "var/lib/" + name, Dir: true},
		}
		if i%4 == 2 {
			s.Files = append(s.Files, File{Path: "usr/lib/systemd/system/" + name + `\x2dworker.service`, Body: []byte("[Service]\nExecStart=/usr/bin/" + name + "\n")})
		}
		specs[i] = s
	}
	return specs
}
