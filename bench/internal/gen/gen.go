// Package gen generates the synthetic RPM corpus of the benchmarks:
// realistic small packages (files under /usr/bin, /etc, /usr/lib64 and
// /usr/share/doc; requires, provides, conflicts, obsoletes; a 3-entry
// changelog) that are a pure function of (seed, index), and large packages
// of random payload.
package gen

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/rpmpack"

	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
)

var (
	prefixes = []string{"", "", "", "lib", "python3-", "perl-", "golang-github-", "rubygem-", "nodejs-", "texlive-", "ghc-"}
	words1   = []string{"acme", "amber", "arrow", "aspen", "atlas", "basil", "beacon", "birch", "blaze", "bolt",
		"brook", "cedar", "cinder", "cobalt", "comet", "coral", "crest", "delta", "drift", "ember", "fable",
		"falcon", "fern", "flint", "frost", "gale", "garnet", "glade", "harbor", "hazel", "heron", "indigo",
		"iris", "jade", "juniper", "kestrel", "lark", "lumen", "maple", "marble", "meadow", "mesa", "nimbus",
		"north", "oak", "onyx", "orbit", "pebble", "pine", "prism", "quartz", "quill", "raven", "reef",
		"ridge", "rowan", "sable", "sage", "slate", "solar", "spruce", "stone", "summit", "tide", "topaz",
		"vale", "willow", "zephyr"}
	words2 = []string{"agent", "bridge", "cache", "codec", "compose", "config", "crypt", "daemon", "db", "dns",
		"fetch", "format", "fs", "graph", "gui", "hash", "http", "image", "index", "io", "json", "kit", "lint",
		"log", "mail", "map", "meter", "net", "parse", "proxy", "queue", "render", "rpc", "scan", "sched",
		"shell", "sql", "stat", "sync", "term", "text", "time", "tls", "trace", "util", "vault", "view", "xml"}
	suffixes  = []string{"", "", "", "", "-devel", "-libs", "-tools", "-common", "-doc", "-data", "-server", "-client"}
	licenses  = []string{"MIT", "GPL-2.0-or-later", "GPL-3.0-only", "LGPL-2.1-or-later", "Apache-2.0", "BSD-3-Clause", "MPL-2.0", "ISC"}
	groups    = []string{"Applications/System", "Development/Libraries", "System Environment/Daemons", "Unspecified", "Applications/Internet"}
	authors   = []string{"Alice Martin <alice@example.org>", "Bogdan Novak <bnovak@example.com>", "Chen Wei <wchen@example.net>", "Dana Schulz <dana@example.de>", "Emeka Obi <emeka@example.org>", "Fatima Haddad <fhaddad@example.com>"}
	changes   = []string{"Update to upstream release %s", "Fix CVE-2024-%04d: buffer overflow in parser", "Rebuild for new toolchain", "Add systemd unit hardening", "Split %s subpackage", "Backport fix for crash on empty input (#%d)"}
	dists     = []string{"fc40", "fc41", "el9", "el10"}
	baseTime  = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	textWords = strings.Fields("the of and to in is that for it as with on be by this are from at or an which " +
		"option value server client default file path config daemon request response buffer timeout cache " +
		"listen port user group mode enable disable log level debug error warning")
)

func pick(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

func text(r *rand.Rand, n int) []byte {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(pick(r, textWords))
		if r.IntN(12) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
	}
	return []byte(b.String()[:n])
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	fill(r, b)
	return b
}

// Spec returns the spec of package i of the corpus of seed. Every index
// gives a distinct package name.
func Spec(seed int64, i int) rpmtest.Spec {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(i)))
	stem := pick(r, words1) + "-" + pick(r, words2) + strconv.FormatInt(int64(i), 36)
	name := pick(r, prefixes) + stem + pick(r, suffixes)
	ver := fmt.Sprintf("%d.%d.%d", r.IntN(10), r.IntN(30), r.IntN(100))
	rel := fmt.Sprintf("%d.%s", 1+r.IntN(5), pick(r, dists))
	arch := "x86_64"
	if r.IntN(5) == 0 {
		arch = "noarch"
	}
	bt := baseTime.Add(time.Duration(r.IntN(365*24*3600)) * time.Second)
	s := rpmtest.Spec{
		Name: name, Version: ver, Release: rel, Arch: arch,
		Summary:     fmt.Sprintf("%s %s library and tools", strings.ToUpper(stem[:1])+stem[1:], pick(r, words2)),
		Description: string(text(r, 200+r.IntN(400))),
		License:     pick(r, licenses),
		URL:         "https://" + stem + ".example.org/",
		Vendor:      "Packyard Bench",
		Packager:    pick(r, authors),
		Group:       pick(r, groups),
		BuildHost:   fmt.Sprintf("builder%02d.example.org", r.IntN(40)),
		BuildTime:   bt,
	}
	if r.IntN(10) == 0 {
		s.HasEpoch, s.Epoch = true, uint32(1+r.IntN(3))
	}
	evr := s.EVR()
	lib := strings.ReplaceAll(stem, "-", "_")
	s.Files = []rpmtest.File{
		{Path: "/usr/bin/" + stem, Body: randBytes(r, 2048+r.IntN(6144)), Mode: 0o755},
		{Path: "/etc/" + stem + "/" + stem + ".conf", Body: text(r, 200+r.IntN(800)), Mode: 0o644, Config: true},
		{Path: "/usr/lib64/lib" + lib + ".so.1", Body: randBytes(r, 1024+r.IntN(3072)), Mode: 0o755},
		{Path: "/usr/share/doc/" + name + "/README", Body: text(r, 300+r.IntN(1500)), Mode: 0o644, Doc: true},
	}
	s.Provides = []rpmtest.Dep{
		{Name: name + "(" + strings.ReplaceAll(arch, "_", "-") + ")", Flags: rpmtest.Equal, Version: evr},
		{Name: "lib" + lib + ".so.1()(64bit)"},
		{Name: "config(" + name + ")", Flags: rpmtest.Equal, Version: evr},
	}
	s.Requires = []rpmtest.Dep{
		{Name: "/bin/sh"},
		{Name: "libc.so.6()(64bit)"},
		{Name: "libc.so.6(GLIBC_2.34)(64bit)"},
		{Name: "rpmlib(CompressedFileNames)", Flags: rpmtest.RPMLib | rpmtest.Less | rpmtest.Equal, Version: "3.0.4-1"},
		{Name: "rpmlib(PayloadFilesHavePrefix)", Flags: rpmtest.RPMLib | rpmtest.Less | rpmtest.Equal, Version: "4.0-1"},
		{Name: "systemd", Flags: rpmtest.Pre},
		{Name: pick(r, words1) + "-" + pick(r, words2) + "-libs", Flags: rpmtest.Greater | rpmtest.Equal, Version: fmt.Sprintf("%d.%d", r.IntN(5), r.IntN(20))},
	}
	s.Conflicts = []rpmtest.Dep{{Name: stem + "-legacy", Flags: rpmtest.Less, Version: "1.0"}}
	s.Obsoletes = []rpmtest.Dep{{Name: stem + "-old", Flags: rpmtest.Less, Version: evr}}
	t := bt
	for k := 0; k < 3; k++ {
		t = t.Add(-time.Duration(1+r.IntN(90*24)) * time.Hour)
		msg := pick(r, changes)
		switch {
		case strings.Contains(msg, "%s") && strings.HasPrefix(msg, "Update"):
			msg = fmt.Sprintf(msg, ver)
		case strings.Contains(msg, "%s"):
			msg = fmt.Sprintf(msg, pick(r, suffixes[4:])[1:])
		case strings.Contains(msg, "%"):
			msg = fmt.Sprintf(msg, r.IntN(10000))
		}
		s.Changelog = append(s.Changelog, rpmtest.Change{
			Time:   t.Truncate(24 * time.Hour).Add(12 * time.Hour),
			Author: fmt.Sprintf("%s - %s", pick(r, authors), evr),
			Text:   "- " + msg,
		})
	}
	return s
}

// FileName returns the conventional file name of a spec's package.
func FileName(s rpmtest.Spec) string {
	a := s.Arch
	if a == "" {
		a = "noarch"
	}
	return fmt.Sprintf("%s-%s-%s.%s.rpm", s.Name, s.Version, s.Release, a)
}

// BuildBig writes a package holding one file of size random bytes (from
// seed) to path. rpmpack keeps a package's file bodies and its compressed
// payload in memory, so this needs about 2×size of RAM while it runs; the
// payload is stored with gzip level 1 (random data does not compress).
func BuildBig(path string, seed int64, k int, size int64) error {
	if size <= 0 || size >= 1<<32 {
		return fmt.Errorf("big package size %d out of range (rpm file sizes are 32-bit)", size)
	}
	r := rand.New(rand.NewChaCha8(seedBytes(seed, k)))
	body := make([]byte, size)
	fill(r, body)
	name := fmt.Sprintf("bigpayload%d", k)
	p, err := rpmpack.NewRPM(rpmpack.RPMMetaData{
		Name: name, Version: "1.0", Release: "1", Arch: "x86_64",
		Summary: "Large random payload for upload benchmarks", Description: "One file of random data.",
		Licence: "MIT", Vendor: "Packyard Bench", Compressor: "gzip:1", BuildTime: baseTime,
		Requires: rpmpack.Relations{{Name: "/bin/sh"}},
	})
	if err != nil {
		return err
	}
	p.AddFile(rpmpack.RPMFile{Name: "/usr/share/" + name + "/data.bin", Body: body, Mode: 0o644, Owner: "root", Group: "root", MTime: uint32(baseTime.Unix())})
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := p.Write(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func seedBytes(seed int64, k int) [32]byte {
	var s [32]byte
	for i := 0; i < 8; i++ {
		s[i] = byte(uint64(seed) >> (8 * i))
		s[8+i] = byte(uint64(k) >> (8 * i))
	}
	copy(s[16:], "packyard-bigrpm!")
	return s
}

func fill(r *rand.Rand, b []byte) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		b[i], b[i+1], b[i+2], b[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	for ; i < len(b); i++ {
		b[i] = byte(r.Uint64())
	}
}
