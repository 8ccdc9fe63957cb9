package rpmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// rpmQuery runs the real rpm on a package file; it skips the test when
// rpm is missing, unless PACKYARD_REQUIRE_REAL=1.
func rpmQuery(t *testing.T, pkg []byte, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("rpm")
	if err != nil {
		if os.Getenv("PACKYARD_REQUIRE_REAL") == "1" {
			t.Fatalf("rpm not found and PACKYARD_REQUIRE_REAL=1: %v", err)
		}
		t.Skipf("rpm not found: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "p.rpm")
	if err := os.WriteFile(path, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--dbpath", filepath.Join(dir, "db"), "-qp"}, append(args, path)...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rpm %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

func TestBuildReadByRPM(t *testing.T) {
	when := time.Date(2024, 1, 2, 12, 0, 0, 0, time.UTC)
	spec := Spec{
		Name: "demo", Version: "1.2", Release: "3", Epoch: 4, HasEpoch: true, Arch: "x86_64",
		Summary: "Demo", Description: "Demo package", License: "MIT", URL: "https://example.com",
		BuildTime: when,
		Files: []File{
			{Path: "/etc/demo.conf", Body: []byte("x"), Mode: 0o644, Config: true},
			{Path: "/usr/bin/demo", Body: []byte("#!/bin/sh\n"), Mode: 0o755},
			{Path: "/usr/share/demo", Dir: true, Mode: 0o755},
			{Path: "/var/log/demo.log", Ghost: true, Mode: 0o644},
		},
		Requires:    []Dep{{Name: "/bin/sh", Flags: Pre}, {Name: "libfoo", Flags: Greater | Equal, Version: "2.0"}},
		Conflicts:   []Dep{{Name: "olddemo", Flags: Less, Version: "1"}},
		Obsoletes:   []Dep{{Name: "demo-legacy"}},
		Recommends:  []Dep{{Name: "demo-doc"}},
		Suggests:    []Dep{{Name: "demo-extra"}},
		Supplements: []Dep{{Name: "(demo and foo)"}},
		Enhances:    []Dep{{Name: "foo", Flags: Greater, Version: "1"}},
		Changelog: []Change{
			{Time: when, Author: "A <a@example.com> - 1.2-3", Text: "- new"},
			{Time: when.AddDate(0, 0, -1), Author: "B <b@example.com> - 1.1-1", Text: "- old"},
		},
	}
	b, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	got := rpmQuery(t, b, "--qf", "%{NEVRA}|%{SUMMARY}|[%{REQUIRENEVRS},]|[%{SUPPLEMENTS},]|[%{ENHANCENEVRS},]|[%{FILEFLAGS:fflags}:%{FILENAMES},]\n")
	want := "demo-4:1.2-3.x86_64|Demo|/bin/sh,libfoo >= 2.0,|(demo and foo),|foo > 1,|cn:/etc/demo.conf,:/usr/bin/demo,:/usr/share/demo,g:/var/log/demo.log,\n"
	if got != want {
		t.Errorf("rpm -qp = %q\nwant       %q", got, want)
	}
	if got := rpmQuery(t, b, "--changelog"); !strings.Contains(got, "- new") || !strings.Contains(got, "B <b@example.com> - 1.1-1") {
		t.Errorf("rpm --changelog = %q", got)
	}
	if got := rpmQuery(t, b, "--qf", "[%{REQUIRENAME}:%{REQUIREFLAGS:deptype},]\n"); !strings.Contains(got, "/bin/sh:pre") {
		t.Errorf("Requires(pre) missing: %q", got)
	}
}

func TestRawPackagesReadByRPM(t *testing.T) {
	raw := map[string][]byte{"nodigest": NoDigest(), "huge": Huge(10, 5)}
	for name, b := range Legacy() {
		raw[name] = b
	}
	for name, b := range raw {
		got := rpmQuery(t, b, "--qf", "%{NAME}|[%{FILENAMES},]|[%{REQUIRENAME},]\n")
		if !strings.HasPrefix(got, name+"|") {
			t.Errorf("%s: rpm -qp = %q", name, got)
		}
	}
}

func TestCorpus(t *testing.T) {
	a, b := Corpus(50, 7), Corpus(50, 7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Corpus is not deterministic")
	}
	seen := map[string]bool{}
	for i, s := range a {
		if want := fmt.Sprintf("pkg-%05d", i); s.Name != want {
			t.Errorf("spec %d is named %q, want %q", i, s.Name, want)
		}
		if seen[s.Name] || len(s.Files) < 3 || len(s.Changelog) != 3 {
			t.Errorf("spec %s: duplicate or too small", s.Name)
		}
		seen[s.Name] = true
		if _, err := Build(s); err != nil {
			t.Fatalf("Build(%s): %v", s.Name, err)
		}
	}
	if c := Corpus(5, 8); reflect.DeepEqual(c, a[:5]) {
		t.Error("different seeds gave the same corpus")
	}
}

func TestMalformedCorpus(t *testing.T) {
	valid, err := Build(Corpus(1, 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	m := Malformed(valid)
	if len(m) < 40 {
		t.Errorf("only %d malformed cases", len(m))
	}
	for name, b := range m {
		if name != "empty" && len(b) == 0 {
			t.Errorf("%s is empty", name)
		}
	}
	if !bytes.Equal(m["truncated-lead-50"], valid[:50]) {
		t.Error("truncated-lead-50 is not a prefix of the valid package")
	}
}
