package rpmtest

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strconv"
)

// layout locates the parts of a valid RPM.
type layout struct {
	sigAt, sigIndexAt, sigDataAt, sigDataEnd, sigEnd int
	hdrAt, hdrIndexAt, hdrDataAt, hdrEnd             int
	sigIl, sigDl, hdrIl, hdrDl                       int
}

func locate(b []byte) (layout, bool) {
	var l layout
	be := binary.BigEndian
	l.sigAt = 96
	if len(b) < l.sigAt+16 {
		return l, false
	}
	l.sigIl, l.sigDl = int(be.Uint32(b[l.sigAt+8:])), int(be.Uint32(b[l.sigAt+12:]))
	l.sigIndexAt = l.sigAt + 16
	l.sigDataAt = l.sigIndexAt + 16*l.sigIl
	l.sigDataEnd = l.sigDataAt + l.sigDl
	l.sigEnd = l.sigDataEnd + (8-l.sigDl%8)%8
	l.hdrAt = l.sigEnd
	if len(b) < l.hdrAt+16 {
		return l, false
	}
	l.hdrIl, l.hdrDl = int(be.Uint32(b[l.hdrAt+8:])), int(be.Uint32(b[l.hdrAt+12:]))
	l.hdrIndexAt = l.hdrAt + 16
	l.hdrDataAt = l.hdrIndexAt + 16*l.hdrIl
	l.hdrEnd = l.hdrDataAt + l.hdrDl
	return l, len(b) >= l.hdrEnd && l.hdrIl > 2
}

// indexEntry returns the position of the i-th main header index entry.
func (l layout) indexEntry(i int) int { return l.hdrIndexAt + 16*i }

// findEntry returns the index of the first main header entry with the given
// type after the region entry, or -1.
func findEntry(b []byte, l layout, typ uint32) int {
	for i := 1; i < l.hdrIl; i++ {
		if binary.BigEndian.Uint32(b[l.indexEntry(i)+4:]) == typ {
			return i
		}
	}
	return -1
}

// Malformed returns a named corpus of bad inputs derived from valid, a
// valid RPM such as Build returns (with a signature header digest and a
// main header of at least a few entries):
//
//   - the input cut at many offsets in the lead, the signature header and
//     the main header;
//   - wrong lead and header magic, an unsupported lead version or
//     signature type;
//   - index counts and data lengths that lie (too small, too large, huge);
//   - index entries with offsets past the data or negative, huge counts,
//     unknown types, misaligned integers, overlapping data, duplicate tags,
//     unterminated strings;
//   - a main header that does not match its digest;
//   - empty input, random bytes, a lead followed by random bytes.
//
// It also returns inputs that are structurally sound but whose content is
// wrong or extreme, built without valid: "control-char-summary",
// "missing-name", "name-with-slash", "name-not-a-string",
// "dirindex-out-of-range" and "file-lists-disagree" must be refused;
// "invalid-utf8-summary" holds ISO-8859-1 text that a reader must either
// refuse or convert; "files-100000" lists 100,000 files, which a reader
// must handle in bounded memory and time.
//
// Malformed panics if valid is not a well-formed RPM.
func Malformed(valid []byte) map[string][]byte {
	l, ok := locate(valid)
	if !ok {
		panic("rpmtest: Malformed needs a valid RPM")
	}
	be := binary.BigEndian
	m := make(map[string][]byte)
	cut := func(name string, n int) { m[name] = slices.Clone(valid[:n]) }
	edit := func(name string, f func(b []byte) []byte) { m[name] = f(slices.Clone(valid)) }
	put32 := func(name string, at int, v uint32) {
		edit(name, func(b []byte) []byte { be.PutUint32(b[at:], v); return b })
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}

	// Truncation.
	m["empty"] = []byte{}
	for _, n := range []int{1, 3, 4, 50, 95} {
		cut("truncated-lead-"+strconv.Itoa(n), n)
	}
	cut("lead-only", 96)
	cut("truncated-sig-intro", l.sigAt+8)
	cut("truncated-sig-index", l.sigIndexAt+16*l.sigIl/2+3)
	cut("truncated-sig-data", l.sigDataAt+l.sigDl/2)
	if l.sigEnd > l.sigDataEnd {
		cut("truncated-sig-padding", l.sigDataEnd)
	}
	cut("truncated-hdr-intro", l.hdrAt+10)
	cut("truncated-hdr-index-start", l.hdrIndexAt)
	cut("truncated-hdr-index", l.hdrIndexAt+16*l.hdrIl/2+5)
	cut("truncated-hdr-data-start", l.hdrDataAt+1)
	cut("truncated-hdr-data-middle", l.hdrDataAt+l.hdrDl/2)
	cut("truncated-hdr-data-last-byte", l.hdrEnd-1)

	// Magic, version and signature type.
	edit("bad-lead-magic", func(b []byte) []byte { b[0] ^= 0xff; return b })
	edit("bad-lead-version", func(b []byte) []byte { b[4] = 9; return b })
	edit("bad-lead-signature-type", func(b []byte) []byte { b[79] = 1; return b })
	edit("bad-sig-magic", func(b []byte) []byte { b[l.sigAt+1] ^= 0xff; return b })
	edit("bad-hdr-magic", func(b []byte) []byte { b[l.hdrAt+2] ^= 0xff; return b })
	edit("sig-padding-missing", func(b []byte) []byte {
		if l.sigEnd > l.sigDataEnd {
			return slices.Delete(b, l.sigDataEnd, l.sigEnd)
		}
		return slices.Insert(b, l.sigEnd, 0, 0, 0, 0)
	})

	// Index counts and data lengths that lie.
	put32("sig-index-count-lying", l.sigAt+8, uint32(l.sigIl+1))
	put32("sig-index-count-zero", l.sigAt+8, 0)
	put32("sig-index-count-huge", l.sigAt+8, 0x7fffffff)
	put32("sig-data-length-huge", l.sigAt+12, 0x7fffffff)
	put32("sig-data-length-short", l.sigAt+12, uint32(l.sigDl/2))
	put32("hdr-index-count-lying", l.hdrAt+8, uint32(l.hdrIl+3))
	put32("hdr-index-count-zero", l.hdrAt+8, 0)
	put32("hdr-index-count-huge", l.hdrAt+8, 1000000)
	put32("hdr-index-count-max", l.hdrAt+8, 0xffffffff)
	put32("hdr-data-length-short", l.hdrAt+12, uint32(l.hdrDl-10))
	put32("hdr-data-length-long", l.hdrAt+12, uint32(l.hdrDl+64))
	put32("hdr-data-length-huge", l.hdrAt+12, 0x7fffffff)
	put32("hdr-data-length-max", l.hdrAt+12, 0xffffffff)

	// Index entries.
	first := l.indexEntry(1)
	put32("tag-offset-past-end", first+8, uint32(l.hdrDl+100))
	put32("tag-offset-negative", first+8, 0xfffffff0)
	put32("tag-unknown-type", first+4, 42)
	put32("tag-count-zero", first+12, 0)
	put32("tag-number-low", first, 7)
	edit("tag-null-type-huge-count", func(b []byte) []byte {
		be.PutUint32(b[first+4:], 0)
		be.PutUint32(b[first+12:], 0x7fffffff)
		return b
	})
	if i := findEntry(valid, l, typeInt32); i > 0 {
		at := l.indexEntry(i)
		put32("tag-int-count-huge", at+12, 0x7fffffff)
		put32("tag-int-count-over-limit", at+12, 2_000_000)
		put32("tag-int-misaligned", at+8, be.Uint32(valid[at+8:])+1)
	}
	if i := findEntry(valid, l, typeStringArray); i > 0 {
		at := l.indexEntry(i)
		put32("tag-string-count-huge", at+12, 0x40000000)
		put32("tag-string-count-lying", at+12, be.Uint32(valid[at+12:])+1000)
	}
	if i := findEntry(valid, l, typeString); i > 0 {
		at := l.indexEntry(i)
		put32("tag-string-unterminated", at+8, uint32(l.hdrDl-1))
		put32("tag-string-count-two", at+12, 2)
	}
	second := l.indexEntry(2)
	put32("tag-overlap", second+8, be.Uint32(valid[first+8:]))
	put32("tag-duplicate", second, be.Uint32(valid[first:]))
	edit("hdr-digest-mismatch", func(b []byte) []byte {
		// Change the last byte before the region trailer: covered by the
		// digest, read by nobody.
		b[l.hdrEnd-17] ^= 0x01
		return b
	})

	// Random input.
	m["random-bytes"] = random(4096)
	m["random-after-lead"] = append(slices.Clone(valid[:96]), random(4096)...)
	m["random-headers"] = append(slices.Clone(valid[:l.sigAt+16]), random(8192)...)

	// Sound structure, wrong or extreme content.
	m["control-char-summary"] = rawRPM("ctrl", basicEntries("ctrl", "bell\x07summary"), true)
	m["invalid-utf8-summary"] = rawRPM("latin", basicEntries("latin", "caf\xe9 cr\xe8me br\xfbl\xe9e"), true)
	noName := basicEntries("noname", "no name")[1:]
	m["missing-name"] = rawRPM("noname", noName, true)
	slash := basicEntries("x", "slash")
	slash[0] = rawString(tagName, "../../etc/passwd")
	m["name-with-slash"] = rawRPM("slash", slash, true)
	intName := basicEntries("x", "int name")
	intName[0] = rawInt32(tagName, []uint32{42})
	m["name-not-a-string"] = rawRPM("intname", intName, true)
	m["dirindex-out-of-range"] = rawRPM("dirindex", withFiles(basicEntries("dirindex", "bad index"), []string{"/usr/"}, []string{"a", "b"}, []uint32{0, 5}), true)
	disagree := withFiles(basicEntries("disagree", "bad lists"), []string{"/usr/"}, []string{"a", "b"}, []uint32{0, 0})
	disagree[len(disagree)-1] = rawInt32(tagFileFlags, []uint32{0})
	m["file-lists-disagree"] = rawRPM("disagree", disagree, true)
	m["files-100000"] = Huge(100000, 0)
	return m
}
