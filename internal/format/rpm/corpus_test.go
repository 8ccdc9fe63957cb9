package rpm

import (
	"fmt"
	"time"

	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
)

// testTime is the build time of the hand-written test packages.
var testTime = time.Date(2023, 6, 15, 10, 30, 0, 0, time.UTC)

func day(n int) time.Time { return time.Date(2023, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, n) }

// goldenSpecs returns the hand-written packages of the golden tests
// followed by generated ones. Together they cover every dependency kind,
// weak and legacy weak dependencies, pre-requirements, epochs, %config,
// %ghost and directories, long changelogs with equal dates, XML special
// characters, non-ASCII UTF-8, ISO-8859-1 text and createrepo_c's
// filtering rules.
func goldenSpecs() []rpmtest.Spec {
	var long []rpmtest.Change
	for i := range 15 {
		// Newest first; entries 3–5 and 8–9 share a date.
		d := day(100 - i)
		switch i {
		case 4, 5:
			d = day(100 - 3)
		case 9:
			d = day(100 - 8)
		}
		long = append(long, rpmtest.Change{Time: d, Author: fmt.Sprintf("Dév Üser <dev%d@example.com> - 1.%d-1", i, 15-i), Text: fmt.Sprintf("- change %d: fix <bug> & \"quote\"", i)})
	}
	specs := []rpmtest.Spec{
		{
			Name: "alpha", Version: "2.4.1", Release: "3.fc40", Epoch: 2, HasEpoch: true, Arch: "x86_64",
			Summary:     `Alpha & <omega> "tools" — ünïcödé 日本語 😀`,
			Description: "Alpha does <everything> & more.\n\nIt has \"quotes\", 'apostrophes', tabs\there, ]]> and ünïcödé 日本語 😀.\n",
			License:     "MIT AND (GPL-2.0-only OR Apache-2.0)",
			URL:         "https://example.com/alpha?x=1&y=<2>",
			Vendor:      `ACME "Corp" <acme@example.com>`,
			Packager:    "Jörg Ñandú <jorg@example.com>",
			Group:       "Applications/Tést & Debug",
			BuildHost:   "build-01.example.com",
			BuildTime:   testTime,
			Files: []rpmtest.File{
				{Path: "/etc/alpha", Dir: true, Mode: 0o755},
				{Path: "/etc/alpha/alpha.conf", Body: []byte("a=1\n"), Mode: 0o644, Config: true},
				{Path: "/usr/bin/alpha", Body: []byte("#!/bin/sh\n"), Mode: 0o755},
				{Path: "/usr/bin/alpha-link", Symlink: "alpha"},
				{Path: "/usr/sbin/alphad", Body: []byte("#!/bin/sh\n"), Mode: 0o755},
				{Path: "/usr/share/alpha", Dir: true, Mode: 0o755},
				{Path: "/usr/share/alpha/da&ta <1> \"x\".txt", Body: []byte("x"), Mode: 0o644},
				{Path: "/usr/share/alpha/ünï 日本.txt", Body: []byte("x"), Mode: 0o644},
				{Path: "/usr/share/doc/alpha/README", Body: []byte("read me"), Mode: 0o644, Doc: true},
				{Path: "/var/lib/alpha", Dir: true, Ghost: true, Mode: 0o755},
				{Path: "/var/log/alpha.log", Ghost: true, Mode: 0o640},
			},
			Provides: []rpmtest.Dep{
				{Name: "config(alpha)", Flags: rpmtest.Equal, Version: "2:2.4.1-3.fc40"},
				{Name: "alpha(x86-64)", Flags: rpmtest.Equal, Version: "2:2.4.1-3.fc40"},
				{Name: "libalpha.so.1()(64bit)"},
				{Name: "virtual<alpha> & \"more\"", Flags: rpmtest.Greater, Version: "1"},
			},
			Requires: []rpmtest.Dep{
				{Name: "/bin/sh", Flags: rpmtest.Pre},
				{Name: "/bin/sh", Flags: rpmtest.Post},
				{Name: "shadow-utils", Flags: rpmtest.Pre},
				{Name: "systemd", Flags: rpmtest.Preun},
				{Name: "systemd", Flags: rpmtest.Postun},
				{Name: "coreutils", Flags: rpmtest.Greater | rpmtest.Equal, Version: "8.32"},
				{Name: "libfoo", Flags: rpmtest.Equal, Version: "3:1.0-2.el9"},
				{Name: "libbar", Flags: rpmtest.Less, Version: "2.0"},
				{Name: "libbaz", Flags: rpmtest.Less | rpmtest.Equal, Version: "2.0-1"},
				{Name: "libqux", Flags: rpmtest.Greater, Version: "0.1"},
				{Name: "(python3 or python2)"},
				{Name: "libc.so.6()(64bit)"},
				{Name: "libc.so.6(GLIBC_2.34)(64bit)"},
				{Name: "rpmlib(CompressedFileNames)", Flags: rpmtest.RPMLib | rpmtest.Less | rpmtest.Equal, Version: "3.0.4-1"},
			},
			Conflicts:   []rpmtest.Dep{{Name: "alpha-old", Flags: rpmtest.Less, Version: "2.0"}, {Name: "beta-tools"}},
			Obsoletes:   []rpmtest.Dep{{Name: "alpha-legacy", Flags: rpmtest.Less | rpmtest.Equal, Version: "1:1.9-9"}},
			Recommends:  []rpmtest.Dep{{Name: "alpha-doc", Flags: rpmtest.Equal, Version: "2:2.4.1-3.fc40"}, {Name: "bash-completion"}},
			Suggests:    []rpmtest.Dep{{Name: "alpha-extras", Flags: rpmtest.Greater | rpmtest.Equal, Version: "2"}},
			Supplements: []rpmtest.Dep{{Name: "(alpha and langpacks-de)"}},
			Enhances:    []rpmtest.Dep{{Name: "omega", Flags: rpmtest.Greater, Version: "0.5"}},
			Changelog:   long,
		},
		{
			Name: "beta-latin1", Version: "1.0", Release: "1", Arch: "noarch", BuildTime: testTime,
			Summary:     "Caf\xe9 cr\xe8me \x85 br\xfbl\xe9e",
			Description: "Na\xefve d\xe9j\xe0 vu \xc3\xa9 mixed with valid UTF-8 ü",
			License:     "GPL",
			Packager:    "J\xf6rg <j@example.com>",
			Files: []rpmtest.File{
				{Path: "/usr/share/beta/f\xe9.txt", Body: []byte("x"), Mode: 0o644},
				{Path: "/usr/share/b\xe9ta", Dir: true, Mode: 0o755},
				{Path: "/usr/share/b\xe9ta/\xfcber", Body: []byte("x"), Mode: 0o644},
			},
			Requires:  []rpmtest.Dep{{Name: "d\xe9p", Flags: rpmtest.Greater | rpmtest.Equal, Version: "1.\xe9-1"}},
			Changelog: []rpmtest.Change{{Time: day(10), Author: "J\xf6rg <j@example.com>", Text: "- fix caf\xe9"}},
		},
		{
			Name: "gamma-ws", Version: "0.1", Release: "1", Arch: "noarch", BuildTime: testTime,
			Summary:     "cr\rlf\ntab\tend",
			Description: "line 1\r\nline\t2\n\n  indented\n",
			URL:         "http://example.com/\"q\"",
			Files: []rpmtest.File{
				{Path: "/usr/share/gamma/a\tb", Body: []byte("x"), Mode: 0o644},
				{Path: "/usr/share/gamma/c\rd", Body: []byte("x"), Mode: 0o644},
				{Path: "/usr/share/gamma/e\nf", Body: []byte("x"), Mode: 0o644},
			},
			Provides: []rpmtest.Dep{{Name: "tab\there", Flags: rpmtest.Equal, Version: "1\t2"}, {Name: "nl\nhere"}, {Name: "cr\rhere"}},
			Changelog: []rpmtest.Change{
				{Time: day(5), Author: "q\"uote\ttab\nnl\rcr <a@b> & ü €  ", Text: "t\"e\tx\rt\n- more"},
				{Time: day(1), Author: " ", Text: ""},
				{Time: day(1), Author: "", Text: ""},
			},
		},
		{
			Name: "delta-deps", Version: "1", Release: "1", Arch: "x86_64", BuildTime: testTime,
			Summary: "Dependency rules",
			Files: []rpmtest.File{
				{Path: "/usr/bin/delta", Body: []byte("x"), Mode: 0o755},
				{Path: "/usr/share/delta/data", Body: []byte("x"), Mode: 0o644},
				{Path: "/usr/lib/sendmail", Body: []byte("x"), Mode: 0o755},
				{Path: "/etc/delta.conf", Body: []byte("x"), Mode: 0o644, Config: true},
			},
			Provides: []rpmtest.Dep{{Name: "delta-api", Flags: rpmtest.Equal, Version: "2"}, {Name: "delta-virtual"}, {Name: ""}},
			Requires: []rpmtest.Dep{
				{Name: "rpmlib(CompressedFileNames)", Flags: rpmtest.RPMLib | rpmtest.Less | rpmtest.Equal, Version: "3.0.4-1"},
				{Name: "rpmlib(PayloadIsZstd)", Flags: rpmtest.RPMLib | rpmtest.Less | rpmtest.Equal, Version: "5.4.18-1"},
				{Name: "badepoch", Flags: rpmtest.Equal, Version: "abc:1.0-1"},
				{Name: "hexepoch", Flags: rpmtest.Equal, Version: "0x1:1.0-1"},
				{Name: "emptyepoch", Flags: rpmtest.Equal, Version: ":1.0-1"},
				{Name: "spaceepoch", Flags: rpmtest.Equal, Version: " 5:1.0-1"},
				{Name: "signepoch", Flags: rpmtest.Equal, Version: "-5:1.0-1"},
				{Name: "bigepoch", Flags: rpmtest.Equal, Version: "99999999999999999999999:1.0-1"},
				{Name: "noflagver", Version: "1.0-1"},
				{Name: "weirdflags", Flags: rpmtest.Less | rpmtest.Greater, Version: "1.0-1"},
				{Name: "allflags", Flags: rpmtest.Less | rpmtest.Greater | rpmtest.Equal, Version: "1.0-1"},
				{Name: "anybit", Flags: 1 | rpmtest.Equal, Version: "1.0"},
				{Name: "relempty", Flags: rpmtest.Equal, Version: "1.0-"},
				{Name: "multidash", Flags: rpmtest.Equal, Version: "1-2-3"},
				{Name: "onlyepoch", Flags: rpmtest.Equal, Version: "5:"},
				{Name: "flagsnover", Flags: rpmtest.Equal},
				{Name: "dup"}, {Name: "dup"}, {Name: "dup", Flags: rpmtest.Pre}, {Name: "dup"}, {Name: "dup", Flags: rpmtest.Pre},
				{Name: "dup2", Flags: rpmtest.Equal, Version: "1"}, {Name: "dup2", Flags: rpmtest.Equal, Version: "2"}, {Name: "dup2", Flags: rpmtest.Equal, Version: "1"},
				{Name: "prereq", Flags: rpmtest.PreReq}, {Name: "preun", Flags: rpmtest.Preun}, {Name: "postun", Flags: rpmtest.Postun}, {Name: "post", Flags: rpmtest.Post},
				{Name: "hint", Flags: rpmtest.MissingOK}, {Name: "hint2", Flags: rpmtest.MissingOK | rpmtest.Pre | rpmtest.Greater, Version: "2"},
				{Name: "hintdup"}, {Name: "hintdup", Flags: rpmtest.MissingOK},
				{Name: "hintdup2", Flags: rpmtest.MissingOK}, {Name: "hintdup2"},
				{Name: "hintdup3", Flags: rpmtest.MissingOK}, {Name: "hintdup3", Flags: rpmtest.MissingOK},
				{Name: "zz-late"}, {Name: "aa-early"}, {Name: "zz-late"}, {Name: "zz-late", Flags: rpmtest.Equal, Version: "1"}, {Name: "aa-early"},
				{Name: "libc.so.6(GLIBC_2.99)", Flags: rpmtest.MissingOK}, {Name: "libc.so.6(GLIBC_2.99)", Flags: rpmtest.MissingOK},
				{Name: "delta-api", Flags: rpmtest.Equal, Version: "2"},
				{Name: "delta-api", Flags: rpmtest.Equal, Version: "3"},
				{Name: "delta-virtual"},
				{Name: "delta", Flags: rpmtest.Equal, Version: "1-1"},
				{Name: "/usr/bin/delta"}, {Name: "/usr/share/delta/data"}, {Name: "/etc/delta.conf"}, {Name: "/usr/lib/sendmail"}, {Name: "/usr/bin/other"},
				{Name: "libc.so.6()(64bit)"}, {Name: "libc.so.6(GLIBC_2.2.5)(64bit)"}, {Name: "libc.so.6(GLIBC_2.34)(64bit)"}, {Name: "libc.so.6(GLIBC_2.4)(64bit)"}, {Name: "libc.so.6"},
				{Name: ""},
			},
			OldSuggests: []rpmtest.Dep{{Name: "oldsug"}, {Name: "oldsugstrong", Flags: 1 << 27}},
			OldEnhances: []rpmtest.Dep{{Name: "oldenh", Flags: rpmtest.Greater, Version: "1"}, {Name: "oldenhstrong", Flags: 1 << 27}},
			Recommends:  []rpmtest.Dep{{Name: "realrec"}},
		},
		{Name: "epsilon-empty", Version: "1", Release: "1", Arch: "x86_64", BuildTime: testTime},
		{Name: "zeta-src", Version: "3.1", Release: "2", Arch: "x86_64", Source: true, BuildTime: testTime, Summary: "A source package",
			Files: []rpmtest.File{{Path: "zeta.spec", Body: []byte("Name: zeta"), Mode: 0o644}, {Path: "zeta-3.1.tar.gz", Body: []byte("x"), Mode: 0o644}}},
		{Name: "eta-emptyreq", Version: "1", Release: "1", Arch: "noarch", BuildTime: testTime,
			Requires: []rpmtest.Dep{{Name: ""}}, Conflicts: []rpmtest.Dep{{Name: ""}, {Name: ""}}},
		{
			Name: "theta-primary", Version: "1", Release: "1", Arch: "noarch", BuildTime: testTime,
			Files: []rpmtest.File{
				{Path: "/bin", Dir: true, Mode: 0o755},
				{Path: "/bin/x", Body: []byte("x"), Mode: 0o755},
				{Path: "/etc", Dir: true, Mode: 0o755},
				{Path: "/etc/x", Body: []byte("x"), Mode: 0o644},
				{Path: "/etcx/y", Body: []byte("x"), Mode: 0o644},
				{Path: "/opt/sbin/z", Body: []byte("x"), Mode: 0o755},
				{Path: "/usr/lib/sendmail", Body: []byte("x"), Mode: 0o755},
				{Path: "/usr/lib/sendmail2", Body: []byte("x"), Mode: 0o755},
				{Path: "/usr/libexec/bin-tool", Body: []byte("x"), Mode: 0o755},
				{Path: "/usr/share/robin/x", Body: []byte("x"), Mode: 0o644},
				{Path: "/xbin", Dir: true, Mode: 0o755},
				{Path: "/xbin/ghost", Ghost: true, Mode: 0o755},
			},
			Requires: []rpmtest.Dep{{Name: "/bin/x"}, {Name: "/etcx/y"}, {Name: "/usr/share/robin/x"}, {Name: "/usr/lib/sendmail2"}, {Name: "/xbin/ghost"}},
		},
		{
			Name: "iota-changelog", Version: "1", Release: "1", Arch: "noarch", BuildTime: testTime,
			Changelog: []rpmtest.Change{
				{Time: time.Unix(100, 0), Author: "a1   ", Text: "1"},
				{Time: time.Unix(100, 0), Author: "a2", Text: "2"},
				{Time: time.Unix(100, 0), Author: "a3", Text: "3"},
				{Time: time.Unix(50, 0), Author: "a4", Text: "4"},
				{Time: time.Unix(101, 0), Author: "a5", Text: "5"},
				{Time: time.Unix(101, 0), Author: "a6", Text: "6"},
				{Time: time.Unix(3000000000, 0), Author: "a7", Text: "7"},
				{Time: time.Unix(3000000000, 0), Author: "a8", Text: "8"},
				{Time: time.Unix(3000000000, 0), Author: "a9", Text: "9"},
				{Time: time.Unix(7, 0), Author: "a10", Text: "10"},
				{Time: time.Unix(7, 0), Author: "a11", Text: "11"},
				{Time: time.Unix(7, 0), Author: "a12", Text: "12"},
			},
		},
		{Name: "kappa-epoch0", Version: "1.0~rc1", Release: "0.1", Epoch: 0, HasEpoch: true, Arch: "aarch64", BuildTime: testTime,
			Provides: []rpmtest.Dep{{Name: "kappa-api", Flags: rpmtest.Equal, Version: "0:1.0~rc1"}, {Name: "kappa-extra"}},
			Requires: []rpmtest.Dep{{Name: "kappa-api", Flags: rpmtest.Equal, Version: "0:1.0~rc1"}, {Name: "kappa-extra", Flags: rpmtest.Greater, Version: "1"}}},
		{Name: "Lambda-Upper", Version: "1.0^20230101git1", Release: "1", Arch: "noarch", BuildTime: testTime, Summary: "Upper-case name"},
		{
			Name: "mu-weak", Version: "1", Release: "1", Arch: "noarch", BuildTime: testTime,
			Recommends:  []rpmtest.Dep{{Name: "r-lt", Flags: rpmtest.Less, Version: "1"}, {Name: "r-gt", Flags: rpmtest.Greater, Version: "1:2-3"}},
			Suggests:    []rpmtest.Dep{{Name: "s-eq", Flags: rpmtest.Equal, Version: "1-1"}, {Name: "s-le", Flags: rpmtest.Less | rpmtest.Equal, Version: "4:1"}},
			Supplements: []rpmtest.Dep{{Name: "p-ge", Flags: rpmtest.Greater | rpmtest.Equal, Version: "2.0-0.rc1"}},
			Enhances:    []rpmtest.Dep{{Name: "e-none"}, {Name: "e-eq", Flags: rpmtest.Equal, Version: "1"}},
		},
	}
	return append(specs, rpmtest.Corpus(10, 42)...)
}
