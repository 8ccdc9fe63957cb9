package debtest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// corpusEpoch is the modification time of the first corpus package; later
// ones are a few minutes apart.
var corpusEpoch = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	corpusArches       = []string{"amd64", "amd64", "all", "arm64"}
	corpusCompressions = []string{"gz", "xz", "zst"}
	corpusSections     = []string{"utils", "libs", "net", "admin", "devel", "doc", "misc"}
	corpusPriorities   = []string{"optional", "optional", "optional", "important", "extra"}
	corpusMaintainers  = []string{
		"Alice Example <alice@example.com>",
		"Bob Builder <bob@example.org>",
		"Carol Packager <carol@example.net>",
		"Debian Go Packaging Team <team+pkg-go@tracker.debian.org>",
	}
	// corpusLibs are dependencies with a version constraint.
	corpusLibs = []string{
		"libc6 (>= 2.34)",
		"libssl3 (>= 3.0.0)",
		"zlib1g (>= 1:1.2.0)",
		"libgcc-s1 (>= 3.0)",
		"libstdc++6 (>= 12)",
		"libsystemd0 (>= 252~rc1)",
		"libcurl4 (>= 7.16.2)",
	}
	corpusTools = []string{"python3:any", "perl", "adduser", "debconf (>= 0.5) | debconf-2.0", "lsb-base (>= 3.0-6)", "init-system-helpers (>= 1.54~)"}
)

// Corpus returns n distinct, realistic package specs named "pkg-00000",
// "pkg-00001", …: architectures amd64 (half), all and arm64; versions
// with epochs, tildes and Debian revisions; every kind of dependency field
// with version constraints and alternatives ("a (>= 1.0) | b"); multi-line
// descriptions with " ." paragraphs; about a fifth with a lib* Source
// (pool prefix "libp") and a fifth with a Source of the "src (1.0-1)"
// form (a binary rebuild, version "+b1"); Multi-Arch, Homepage, Section,
// Priority and Installed-Size; compression rotating gz, xz, zst. Each has
// a binary, a configuration file and documentation. The same n and seed
// always give the same specs.
func Corpus(n int, seed int64) []Spec {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6a09e667f3bcc909))
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	specs := make([]Spec, n)
	for i := range specs {
		name := fmt.Sprintf("pkg-%05d", i)
		upstream := fmt.Sprintf("%d.%d.%d", rng.IntN(10), rng.IntN(30), rng.IntN(100))
		switch rng.IntN(6) {
		case 0:
			upstream += "~rc" + fmt.Sprint(1+rng.IntN(3))
		case 1:
			upstream += "+dfsg"
		}
		revision := fmt.Sprint(1 + rng.IntN(5))
		if rng.IntN(8) == 0 {
			revision += "~bpo12+1"
		}
		version := upstream + "-" + revision
		if rng.IntN(5) == 0 {
			version = fmt.Sprintf("%d:%s", 1+rng.IntN(3), version)
		}
		arch := pick(corpusArches)
		s := Spec{
			Package:      name,
			Version:      version,
			Architecture: arch,
			Maintainer:   corpusMaintainers[i%len(corpusMaintainers)],
			Section:      pick(corpusSections),
			Priority:     pick(corpusPriorities),
			Homepage:     "https://example.com/projects/" + name,
			Compression:  corpusCompressions[i%len(corpusCompressions)],
			ModTime:      corpusEpoch.Add(time.Duration(i) * 7 * time.Minute),
			Description: fmt.Sprintf("generated test package number %d\n"+
				"%s is a generated package for tests and benchmarks of\n"+
				"APT repositories.\n"+
				"\n"+
				"It installs:\n"+
				"  * a program,\n"+
				"  * a configuration file,\n"+
				"  * documentation.", i, name),
		}
		switch i % 5 {
		case 1:
			s.Source = "libpkg-" + name[len("pkg-"):]
			s.Section = "libs"
			if arch != "all" {
				s.MultiArch = "same"
			}
		case 3:
			// A binary rebuild: the binary version has "+b1", the source
			// keeps its own.
			s.Source = fmt.Sprintf("src-%05d (%s)", i, version)
			s.Version = version + "+b1"
		}
		if s.MultiArch == "" && rng.IntN(3) == 0 {
			s.MultiArch = "foreign"
		}
		if arch == "all" {
			s.Depends = pick(corpusTools)
		} else {
			s.Depends = strings.Join([]string{corpusLibs[0], pick(corpusLibs[1:])}, ", ")
		}
		if i > 0 && rng.IntN(3) == 0 {
			s.Depends += fmt.Sprintf(", pkg-%05d (>= 0.1) | pkg-%05d-compat", rng.IntN(i), i)
		}
		if rng.IntN(4) == 0 {
			s.PreDepends = "dpkg (>= 1.15.6~)"
		}
		if rng.IntN(3) == 0 {
			s.Recommends = name + "-doc"
		}
		if rng.IntN(3) == 0 {
			s.Suggests = name + "-extra, " + pick(corpusTools)
		}
		if rng.IntN(5) == 0 {
			s.Conflicts = name + "-legacy"
			s.Breaks = name + "-legacy (<< 1.0~)"
			s.Replaces = name + "-legacy (<< 1.0~)"
		}
		if rng.IntN(4) == 0 {
			s.Provides = fmt.Sprintf("%s-virtual (= %s), virtual-%d", name, upstream, rng.IntN(10))
		}
		if rng.IntN(6) == 0 {
			s.Enhances = pick(corpusTools[:3])
		}
		s.Files = []File{
			{Path: "/usr/bin/" + name, Body: []byte("#!/bin/sh\necho " + name + " " + version + "\n"), Mode: 0o755},
			{Path: "/etc/" + name + ".conf", Body: []byte("# configuration of " + name + "\nenabled = true\n")},
			{Path: "/usr/share/doc/" + name + "/copyright", Body: []byte("Copyright: 2024 Example\nLicense: MIT\n")},
			{Path: "/var/lib/" + name, Dir: true},
		}
		size := 0
		for _, f := range s.Files {
			size += len(f.Body)
		}
		s.InstalledSize = size/1024 + len(s.Files)
		specs[i] = s
	}
	return specs
}
