package rpmtest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
)

// This file writes RPM headers directly, for inputs rpmpack cannot or
// should not produce: headers with huge lists, missing or mistyped tags,
// and packages without digests (which let a fuzzer reach past the digest
// check). Such packages have a lead and headers but no payload; Parse
// never reads the payload.

// Header entry data types.
const (
	typeInt16       = 3
	typeInt32       = 4
	typeString      = 6
	typeBin         = 7
	typeStringArray = 8
	typeI18NString  = 9
)

// Tags used only here.
const (
	tagName         = 1000
	tagVersion      = 1001
	tagRelease      = 1002
	tagSummary      = 1004
	tagDescription  = 1005
	tagBuildTime    = 1006
	tagSize         = 1009
	tagLicense      = 1014
	tagArch         = 1022
	tagOS           = 1021
	tagOldFilenames = 1027
	tagFileSizes    = 1028
	tagFileModes    = 1030
	tagFileFlags    = 1037
	tagSourceRPM    = 1044
	tagDirIndexes   = 1116
	tagBasenames    = 1117
	tagDirnames     = 1118

	regionSignatures = 62
	regionImmutable  = 63
	sigTagSize       = 1000
	sigTagSHA256     = 273
)

// rawEntry is one header entry before encoding.
type rawEntry struct {
	tag, typ, count uint32
	data            []byte
}

func rawString(tag uint32, s string) rawEntry {
	return rawEntry{tag, typeString, 1, append([]byte(s), 0)}
}

func rawI18N(tag uint32, s string) rawEntry {
	return rawEntry{tag, typeI18NString, 1, append([]byte(s), 0)}
}

func rawStrings(tag uint32, ss []string) rawEntry {
	n := 0
	for _, s := range ss {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	for _, s := range ss {
		b = append(append(b, s...), 0)
	}
	return rawEntry{tag, typeStringArray, uint32(len(ss)), b}
}

func rawInt32(tag uint32, vs []uint32) rawEntry {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.BigEndian.PutUint32(b[4*i:], v)
	}
	return rawEntry{tag, typeInt32, uint32(len(vs)), b}
}

func rawInt16(tag uint32, vs []uint16) rawEntry {
	b := make([]byte, 2*len(vs))
	for i, v := range vs {
		binary.BigEndian.PutUint16(b[2*i:], v)
	}
	return rawEntry{tag, typeInt16, uint32(len(vs)), b}
}

// encodeHeader encodes entries, sorted by tag, behind a region tag as rpm
// writes headers: the region's index entry first, its trailer last in the
// data, integers aligned.
func encodeHeader(region uint32, entries []rawEntry) []byte {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b rawEntry) int { return int(a.tag) - int(b.tag) })
	il := len(entries) + 1
	var data []byte
	index := make([]byte, 0, 16*il)
	put := func(tag, typ, off, count uint32) {
		index = binary.BigEndian.AppendUint32(index, tag)
		index = binary.BigEndian.AppendUint32(index, typ)
		index = binary.BigEndian.AppendUint32(index, off)
		index = binary.BigEndian.AppendUint32(index, count)
	}
	put(0, 0, 0, 0) // region entry, filled in below
	for _, e := range entries {
		align := map[uint32]int{typeInt16: 2, typeInt32: 4}[e.typ]
		for align > 0 && len(data)%align != 0 {
			data = append(data, 0)
		}
		put(e.tag, e.typ, uint32(len(data)), e.count)
		data = append(data, e.data...)
	}
	trailerAt := len(data)
	data = binary.BigEndian.AppendUint32(data, region)
	data = binary.BigEndian.AppendUint32(data, typeBin)
	data = binary.BigEndian.AppendUint32(data, uint32(-16*int32(il)))
	data = binary.BigEndian.AppendUint32(data, 16)
	binary.BigEndian.PutUint32(index[0:], region)
	binary.BigEndian.PutUint32(index[4:], typeBin)
	binary.BigEndian.PutUint32(index[8:], uint32(trailerAt))
	binary.BigEndian.PutUint32(index[12:], 16)

	out := make([]byte, 0, 16+len(index)+len(data))
	out = append(out, 0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(il))
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	out = append(out, index...)
	return append(out, data...)
}

// lead returns an RPM lead for a binary (or source) package.
func lead(name string, source bool) []byte {
	b := make([]byte, 96)
	copy(b, []byte{0xed, 0xab, 0xee, 0xdb, 3, 0})
	if source {
		b[7] = 1
	}
	b[9] = 1 // i386 arch number, as rpm writes for every arch
	copy(b[10:75], name)
	b[77] = 1 // Linux
	b[79] = 5 // header-style signature
	return b
}

// rawRPM assembles lead, signature header (with a SHA-256 header digest
// when digest is set) and the main header of entries.
func rawRPM(name string, entries []rawEntry, digest bool) []byte {
	hdr := encodeHeader(regionImmutable, entries)
	sigEntries := []rawEntry{rawInt32(sigTagSize, []uint32{uint32(len(hdr))})}
	if digest {
		sum := sha256.Sum256(hdr)
		sigEntries = append(sigEntries, rawString(sigTagSHA256, hex.EncodeToString(sum[:])))
	}
	sig := encodeHeader(regionSignatures, sigEntries)
	out := lead(name, false)
	out = append(out, sig...)
	out = append(out, make([]byte, (8-len(sig)%8)%8)...)
	return append(out, hdr...)
}

// basicEntries returns the entries of a minimal valid package.
func basicEntries(name, summary string) []rawEntry {
	return []rawEntry{
		rawString(tagName, name),
		rawString(tagVersion, "1.0"),
		rawString(tagRelease, "1"),
		rawI18N(tagSummary, summary),
		rawI18N(tagDescription, "A package written by rpmtest's raw header writer."),
		rawInt32(tagBuildTime, []uint32{1700000000}),
		rawInt32(tagSize, []uint32{0}),
		rawString(tagLicense, "MIT"),
		rawString(tagOS, "linux"),
		rawString(tagArch, "x86_64"),
		rawString(tagSourceRPM, name+"-1.0-1.src.rpm"),
	}
}

// withFiles adds a file list of the given paths (regular files, mode 0644)
// to entries.
func withFiles(entries []rawEntry, dirs []string, bases []string, dirIndexes []uint32) []rawEntry {
	n := len(bases)
	modes := make([]uint16, n)
	for i := range modes {
		modes[i] = 0o100644
	}
	return append(entries,
		rawStrings(tagDirnames, dirs),
		rawStrings(tagBasenames, bases),
		rawInt32(tagDirIndexes, dirIndexes),
		rawInt32(tagFileSizes, make([]uint32, n)),
		rawInt16(tagFileModes, modes),
		rawInt32(tagFileFlags, make([]uint32, n)),
	)
}

// Huge returns a structurally valid package (lead and headers with a
// SHA-256 digest, no payload) that lists files files in one directory and
// deps requirements, for tests of size limits and of memory use.
func Huge(files, deps int) []byte {
	entries := basicEntries("huge", fmt.Sprintf("A package with %d files and %d requirements", files, deps))
	if files > 0 {
		bases := make([]string, files)
		for i := range bases {
			bases[i] = fmt.Sprintf("f%07d", i)
		}
		entries = withFiles(entries, []string{"/usr/share/huge/"}, bases, make([]uint32, files))
	}
	if deps > 0 {
		names := make([]string, deps)
		for i := range names {
			names[i] = fmt.Sprintf("dep%07d", i)
		}
		entries = append(entries,
			rawStrings(tagRequireName, names),
			rawStrings(tagRequireVersion, make([]string, deps)),
			rawInt32(tagRequireFlags, make([]uint32, deps)),
		)
	}
	return rawRPM("huge", entries, true)
}

// NoDigest returns a small valid package whose signature header carries no
// digest, so that every byte of its main header can change without the
// package failing its digest check. It makes a good fuzzing seed.
func NoDigest() []byte {
	entries := basicEntries("nodigest", "A package & its <summary> \"quoted\" ü")
	entries = withFiles(entries, []string{"/etc/", "/usr/bin/", "/usr/share/doc/nodigest/"}, []string{"nodigest.conf", "nodigest", "README"}, []uint32{0, 1, 2})
	entries = append(entries,
		rawStrings(tagProvideName, []string{"nodigest", "config(nodigest)"}),
		rawStrings(tagProvideVersion, []string{"1.0-1", "1.0-1"}),
		rawInt32(tagProvideFlags, []uint32{Equal, Equal}),
		rawStrings(tagRequireName, []string{"/bin/sh", "libc.so.6(GLIBC_2.34)(64bit)", "rpmlib(PayloadIsZstd)", "/usr/bin/nodigest"}),
		rawStrings(tagRequireVersion, []string{"", "", "5.4.18-1", ""}),
		rawInt32(tagRequireFlags, []uint32{Pre, 0, RPMLib | Less | Equal, 0}),
		rawInt32(tagChangelogTime, []uint32{1700000000, 1690000000}),
		rawStrings(tagChangelogName, []string{"Alice <a@example.com> - 1.0-1", "Bob <b@example.com> - 0.9-1"}),
		rawStrings(tagChangelogText, []string{"- New upstream release", "- Initial package"}),
	)
	return rawRPM("nodigest", entries, false)
}

// Legacy returns small packages (lead and headers, no payload) in shapes
// that rpmpack cannot make but rpm and createrepo_c accept, by name:
// "oldfiles" lists its files as plain paths (OLDFILENAMES, as rpm v3 did)
// and requires one of its own files; "srcheur" is a source package known
// only by its file list (no SOURCERPM and no SOURCEPACKAGE tag); "nosrc"
// is a binary package without SOURCERPM.
func Legacy() map[string][]byte {
	old := append(basicEntries("oldfiles", "Plain file names"),
		rawStrings(tagOldFilenames, []string{"/usr/bin/old", "/etc/old.conf", "/usr/share/old/", "/usr/share/old/x"}),
		rawInt16(tagFileModes, []uint16{0o100755, 0o100644, 0o40755, 0o100644}),
		rawInt32(tagFileFlags, []uint32{0, 1, 0, 64}),
		rawStrings(tagRequireName, []string{"/usr/bin/old", "/usr/share/old/x"}),
		rawStrings(tagRequireVersion, []string{"", ""}),
		rawInt32(tagRequireFlags, []uint32{0, 0}),
	)
	noSourceRPM := func(name, summary string) []rawEntry {
		e := basicEntries(name, summary)
		return e[:len(e)-1] // the last entry is SOURCERPM
	}
	src := withFiles(noSourceRPM("srcheur", "Source package by heuristic"), []string{""}, []string{"srcheur.spec", "srcheur.tar.gz"}, []uint32{0, 0})
	return map[string][]byte{
		"oldfiles": rawRPM("oldfiles", old, true),
		"srcheur":  rawRPM("srcheur", src, true),
		"nosrc":    rawRPM("nosrc", noSourceRPM("nosrc", "No source package"), true),
	}
}
