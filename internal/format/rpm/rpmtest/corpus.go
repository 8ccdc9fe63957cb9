package rpmtest

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// corpusEpoch is the build time of the first corpus package; later ones
// are built a few minutes apart.
var corpusEpoch = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	corpusArches   = []string{"x86_64", "x86_64", "noarch", "aarch64"}
	corpusLicenses = []string{"MIT", "GPL-2.0-or-later", "Apache-2.0", "BSD-3-Clause", "LGPL-2.1-only"}
	corpusGroups   = []string{"Applications/System", "Development/Libraries", "System Environment/Daemons", "Unspecified"}
	corpusLibs     = []string{"glibc", "openssl-libs", "zlib", "libcurl", "systemd-libs", "bash", "coreutils", "python3"}
	corpusAuthors  = []string{"Alice Example <alice@example.com>", "Bob Builder <bob@example.org>", "Carol Packager <carol@example.net>"}
)

// Corpus returns n distinct, realistic package specs named "pkg-00000",
// "pkg-00001", …, each with a few files (a binary, a %config file, a
// documentation file, a directory), dependencies of several kinds and a
// three-entry changelog. The same n and seed always give the same specs.
func Corpus(n int, seed int64) []Spec {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	specs := make([]Spec, n)
	for i := range specs {
		name := fmt.Sprintf("pkg-%05d", i)
		major, minor, patch := rng.IntN(10), rng.IntN(30), rng.IntN(100)
		version := fmt.Sprintf("%d.%d.%d", major, minor, patch)
		release := fmt.Sprintf("%d.el9", 1+rng.IntN(5))
		built := corpusEpoch.Add(time.Duration(i) * 7 * time.Minute)
		arch := corpusArches[rng.IntN(len(corpusArches))]
		s := Spec{
			Name:        name,
			Version:     version,
			Release:     release,
			Arch:        arch,
			Summary:     fmt.Sprintf("Generated test package number %d", i),
			Description: fmt.Sprintf("%s is a generated package for tests and benchmarks.\nIt installs a binary, a configuration file and documentation.", name),
			License:     corpusLicenses[rng.IntN(len(corpusLicenses))],
			URL:         fmt.Sprintf("https://example.com/projects/%s", name),
			Vendor:      "Packyard Test Vendor",
			Packager:    corpusAuthors[i%len(corpusAuthors)],
			Group:       corpusGroups[rng.IntN(len(corpusGroups))],
			BuildHost:   "builder.example.com",
			BuildTime:   built,
			Files: []File{
				{Path: "/etc/" + name + ".conf", Body: []byte("# configuration of " + name + "\nenabled = true\n"), Mode: 0o644, Config: true},
				{Path: "/usr/bin/" + name, Body: []byte("#!/bin/sh\necho " + name + "\n"), Mode: 0o755},
				{Path: "/usr/share/doc/" + name, Dir: true, Mode: 0o755},
				{Path: "/usr/share/doc/" + name + "/README", Body: []byte(name + " " + version + "\n"), Mode: 0o644, Doc: true},
				{Path: "/var/log/" + name + ".log", Ghost: true, Mode: 0o640},
			},
			Provides: []Dep{{Name: "config(" + name + ")", Flags: Equal, Version: version + "-" + release}},
			Requires: []Dep{
				{Name: "/bin/sh", Flags: Pre},
				{Name: corpusLibs[rng.IntN(len(corpusLibs))], Flags: Greater | Equal, Version: fmt.Sprintf("%d.%d", 1+rng.IntN(3), rng.IntN(10))},
				{Name: corpusLibs[rng.IntN(len(corpusLibs))]},
				{Name: "rpmlib(CompressedFileNames)", Flags: RPMLib | Less | Equal, Version: "3.0.4-1"},
				{Name: "rpmlib(PayloadFilesHavePrefix)", Flags: RPMLib | Less | Equal, Version: "4.0-1"},
			},
			Changelog: []Change{
				{Time: built.Truncate(24 * time.Hour), Author: fmt.Sprintf("%s - %s-%s", corpusAuthors[i%3], version, release), Text: "- Update to " + version},
				{Time: built.Truncate(24 * time.Hour).Add(-30 * 24 * time.Hour), Author: corpusAuthors[(i+1)%3] + " - 0.9-1", Text: "- Fix the build\n- Add documentation"},
				{Time: built.Truncate(24 * time.Hour).Add(-90 * 24 * time.Hour), Author: corpusAuthors[(i+2)%3] + " - 0.1-1", Text: "- Initial package"},
			},
		}
		if i > 0 && rng.IntN(3) == 0 {
			s.Requires = append(s.Requires, Dep{Name: fmt.Sprintf("pkg-%05d", rng.IntN(i)), Flags: Greater | Equal, Version: "0.1"})
		}
		if rng.IntN(4) == 0 {
			s.Epoch, s.HasEpoch = uint32(1+rng.IntN(3)), true
		}
		if rng.IntN(3) == 0 {
			s.Recommends = []Dep{{Name: name + "-doc"}}
		}
		if rng.IntN(5) == 0 {
			s.Obsoletes = []Dep{{Name: name + "-legacy", Flags: Less, Version: "1.0"}}
			s.Conflicts = []Dep{{Name: name + "-compat"}}
		}
		specs[i] = s
	}
	return specs
}
