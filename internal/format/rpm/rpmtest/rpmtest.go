// Package rpmtest builds RPM packages for tests and benchmarks: realistic
// packages from a Spec (with github.com/google/rpmpack), generated corpora of
// distinct packages, and named corpora of malformed inputs derived from a
// valid package.
//
// Tag numbers and flag values follow rpm's lib/rpmtag.h and
// include/rpm/rpmds.h: https://github.com/rpm-software-management/rpm
package rpmtest

import (
	"bytes"
	"fmt"
	"time"

	"github.com/google/rpmpack"
)

// Dependency sense flags (RPMSENSE_*), combined in Dep.Flags.
const (
	// Less is the "<" comparison.
	Less uint32 = 1 << 1
	// Greater is the ">" comparison.
	Greater uint32 = 1 << 2
	// Equal is the "=" comparison; with Less or Greater, "<=" or ">=".
	Equal uint32 = 1 << 3
	// PreReq is the legacy PreReq: marker.
	PreReq uint32 = 1 << 6
	// Pre marks Requires(pre).
	Pre uint32 = 1 << 9
	// Post marks Requires(post).
	Post uint32 = 1 << 10
	// Preun marks Requires(preun).
	Preun uint32 = 1 << 11
	// Postun marks Requires(postun).
	Postun uint32 = 1 << 12
	// MissingOK marks a legacy weak requirement (Requires(hint)).
	MissingOK uint32 = 1 << 19
	// RPMLib marks an rpmlib(...) feature requirement.
	RPMLib uint32 = 1 << 24
)

// Dep is one dependency entry (provides, requires, ...).
type Dep struct {
	Name string
	// Flags holds the comparison (Less, Greater, Equal) and other sense
	// bits (Pre, Post, ...).
	Flags uint32
	// Version is "[epoch:]version[-release]", or "" for none.
	Version string
}

// File is one file of a package.
type File struct {
	// Path is absolute, e.g. "/usr/bin/foo".
	Path string
	Body []byte
	// Mode holds the permission bits; the file type follows from Dir and
	// Symlink.
	Mode uint32
	// Dir makes the entry a directory (%dir).
	Dir bool
	// Ghost marks a %ghost file: listed, not in the payload.
	Ghost bool
	// Config marks %config(noreplace).
	Config bool
	// Doc marks %doc.
	Doc bool
	// Symlink makes the file a symbolic link to this target.
	Symlink string
}

// Change is one changelog entry.
type Change struct {
	Time   time.Time
	Author string
	Text   string
}

// Spec describes a package for Build.
type Spec struct {
	Name    string
	Version string
	Release string
	// Epoch is written only when HasEpoch is set.
	Epoch    uint32
	HasEpoch bool
	// Arch defaults to "noarch".
	Arch string

	Summary     string
	Description string
	License     string
	URL         string
	Vendor      string
	Packager    string
	Group       string
	BuildHost   string
	BuildTime   time.Time

	// Source marks a source package (SOURCEPACKAGE tag and lead type). The
	// SOURCERPM tag is still written: rpmpack always writes it.
	Source bool

	Files []File

	// Provides lists extra provides; Build always adds the self-provide
	// "Name = [Epoch:]Version-Release" first, as rpmbuild does.
	Provides    []Dep
	Requires    []Dep
	Conflicts   []Dep
	Obsoletes   []Dep
	Recommends  []Dep
	Suggests    []Dep
	Supplements []Dep
	Enhances    []Dep
	// OldSuggests and OldEnhances fill the legacy tags 1156–1161 that
	// createrepo_c built with legacy weak dependencies still reads.
	OldSuggests []Dep
	OldEnhances []Dep

	// Changelog lists entries newest first, as rpm stores them.
	Changelog []Change
}

// Tags used beyond what rpmpack writes itself.
const (
	tagChangelogTime = 1080
	tagChangelogName = 1081
	tagChangelogText = 1082

	tagProvideName      = 1047
	tagRequireFlags     = 1048
	tagRequireName      = 1049
	tagRequireVersion   = 1050
	tagConflictFlags    = 1053
	tagConflictName     = 1054
	tagConflictVersion  = 1055
	tagObsoleteName     = 1090
	tagSourcePackage    = 1106
	tagProvideFlags     = 1112
	tagProvideVersion   = 1113
	tagObsoleteFlags    = 1114
	tagObsoleteVersion  = 1115
	tagOldSuggestName   = 1156
	tagOldSuggestVer    = 1157
	tagOldSuggestFlags  = 1158
	tagOldEnhanceName   = 1159
	tagOldEnhanceVer    = 1160
	tagOldEnhanceFlags  = 1161
	tagRecommendName    = 5046
	tagRecommendVersion = 5047
	tagRecommendFlags   = 5048
	tagSuggestName      = 5049
	tagSuggestVersion   = 5050
	tagSuggestFlags     = 5051
	tagSupplementName   = 5052
	tagSupplementVer    = 5053
	tagSupplementFlags  = 5054
	tagEnhanceName      = 5055
	tagEnhanceVersion   = 5056
	tagEnhanceFlags     = 5057
)

// EVR returns the spec's "[epoch:]version-release".
func (s *Spec) EVR() string {
	v := s.Version + "-" + s.Release
	if s.HasEpoch {
		v = fmt.Sprintf("%d:%s", s.Epoch, v)
	}
	return v
}

// Build builds the package described by spec and returns the .rpm bytes.
func Build(spec Spec) ([]byte, error) {
	if spec.Name == "" || spec.Version == "" || spec.Release == "" {
		return nil, fmt.Errorf("rpmtest: spec needs name, version and release")
	}
	epoch := rpmpack.NoEpoch
	if spec.HasEpoch {
		epoch = spec.Epoch
	}
	arch := spec.Arch
	if arch == "" {
		arch = "noarch"
	}
	r, err := rpmpack.NewRPM(rpmpack.RPMMetaData{
		Name:        spec.Name,
		Summary:     spec.Summary,
		Description: spec.Description,
		Version:     spec.Version,
		Release:     spec.Release,
		Arch:        arch,
		Vendor:      spec.Vendor,
		URL:         spec.URL,
		Packager:    spec.Packager,
		Group:       spec.Group,
		Licence:     spec.License,
		BuildHost:   spec.BuildHost,
		Compressor:  "gzip",
		Epoch:       epoch,
		BuildTime:   spec.BuildTime,
	})
	if err != nil {
		return nil, fmt.Errorf("rpmtest: %w", err)
	}
	mtime := uint32(spec.BuildTime.Unix())
	for _, f := range spec.Files {
		rf := rpmpack.RPMFile{
			Name:  f.Path,
			Body:  f.Body,
			Mode:  uint(f.Mode),
			Owner: "root",
			Group: "root",
			MTime: mtime,
		}
		switch {
		case f.Dir:
			rf.Mode |= 0o040000
			rf.Body = nil
		case f.Symlink != "":
			rf.Mode = 0o120777
			rf.Body = []byte(f.Symlink)
		}
		var t rpmpack.FileType
		if f.Config {
			t |= rpmpack.ConfigFile | rpmpack.NoReplaceFile
		}
		if f.Ghost {
			t |= rpmpack.GhostFile
		}
		if f.Doc {
			t |= rpmpack.DocFile
		}
		rf.Type = t
		r.AddFile(rf)
	}

	provides := append([]Dep{{Name: spec.Name, Flags: Equal, Version: spec.EVR()}}, spec.Provides...)
	addDeps(r, provides, tagProvideName, tagProvideVersion, tagProvideFlags)
	addDeps(r, spec.Requires, tagRequireName, tagRequireVersion, tagRequireFlags)
	addDeps(r, spec.Conflicts, tagConflictName, tagConflictVersion, tagConflictFlags)
	addDeps(r, spec.Obsoletes, tagObsoleteName, tagObsoleteVersion, tagObsoleteFlags)
	addDeps(r, spec.Recommends, tagRecommendName, tagRecommendVersion, tagRecommendFlags)
	addDeps(r, spec.Suggests, tagSuggestName, tagSuggestVersion, tagSuggestFlags)
	addDeps(r, spec.Supplements, tagSupplementName, tagSupplementVer, tagSupplementFlags)
	addDeps(r, spec.Enhances, tagEnhanceName, tagEnhanceVersion, tagEnhanceFlags)
	addDeps(r, spec.OldSuggests, tagOldSuggestName, tagOldSuggestVer, tagOldSuggestFlags)
	addDeps(r, spec.OldEnhances, tagOldEnhanceName, tagOldEnhanceVer, tagOldEnhanceFlags)

	if n := len(spec.Changelog); n > 0 {
		times := make([]uint32, n)
		names := make([]string, n)
		texts := make([]string, n)
		for i, c := range spec.Changelog {
			times[i] = uint32(c.Time.Unix())
			names[i] = c.Author
			texts[i] = c.Text
		}
		r.AddCustomTag(tagChangelogTime, rpmpack.EntryUint32(times))
		r.AddCustomTag(tagChangelogName, rpmpack.EntryStringSlice(names))
		r.AddCustomTag(tagChangelogText, rpmpack.EntryStringSlice(texts))
	}
	if spec.Source {
		r.AddCustomTag(tagSourcePackage, rpmpack.EntryUint32([]uint32{1}))
	}

	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		return nil, fmt.Errorf("rpmtest: %w", err)
	}
	out := buf.Bytes()
	if spec.Source {
		// Lead type 1 is a source package; the lead is not covered by any
		// digest.
		out[6], out[7] = 0, 1
	}
	return out, nil
}

func addDeps(r *rpmpack.RPM, deps []Dep, nameTag, versionTag, flagsTag int) {
	if len(deps) == 0 {
		return
	}
	names := make([]string, len(deps))
	versions := make([]string, len(deps))
	flags := make([]uint32, len(deps))
	for i, d := range deps {
		names[i], versions[i], flags[i] = d.Name, d.Version, d.Flags
	}
	r.AddCustomTag(nameTag, rpmpack.EntryStringSlice(names))
	r.AddCustomTag(versionTag, rpmpack.EntryStringSlice(versions))
	r.AddCustomTag(flagsTag, rpmpack.EntryUint32(flags))
}
