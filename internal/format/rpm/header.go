package rpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The pre-validator in this file reads the lead, the signature header and
// the main header of an RPM with bounded sizes and checks every index entry
// before any of it reaches github.com/sassoftware/go-rpmutils, which trusts
// the counts and lengths it reads.
//
// Layout (https://rpm-software-management.github.io/rpm/manual/format_v4.html,
// https://rpm-software-management.github.io/rpm/manual/format_header.html):
//
//	lead        96 bytes, starting with ed ab ee db
//	signature   a header structure whose data is padded to a multiple of 8
//	header      a header structure
//	payload     not read by Parse
//
// A header structure is
//
//	intro   8e ad e8 01, 4 reserved bytes, index count (be32), data length (be32)
//	index   index count × {tag, type, offset, count}, each be32
//	data    data length bytes
//
// The checks follow rpm's own hdrblobRead and hdrblobVerifyInfo
// (lib/header.c): bounded index count and data length, tag numbers from
// 100 on, known types, at least one value and at most MaxTagValues,
// aligned integers, data that fits, entries whose data does not overlap
// the previous entry's nor the region trailer. The overlap rule also keeps
// the cost of scanning string data linear in the data length.

// Bounds on what Parse accepts. Parse allocates memory proportional to the
// header it reads (the bytes themselves, go-rpmutils' copies of them and
// the strings and numbers it decodes), so these bounds also bound memory.
const (
	// MaxSignatureEntries is rpm's limit on signature header index entries.
	MaxSignatureEntries = 32
	// MaxSignatureDataSize is rpm's limit on signature header data.
	MaxSignatureDataSize = 64 << 20
	// MaxHeaderEntries is rpm's limit on main header index entries
	// (HEADER_TAGS_MAX).
	MaxHeaderEntries = 0xffff
	// MaxHeaderDataSize bounds the main header data: 256 MiB less one
	// byte, rpm's HEADER_DATA_MAX.
	MaxHeaderDataSize = 0x0fffffff
	// MaxTagValues bounds the number of values of any one entry that is
	// not binary data (rpm's HEADER_ARRAY_MAX), so that decoding cannot
	// multiply the header size by the size of a Go string or integer.
	MaxTagValues = 0xfffff
	// MaxFiles bounds the number of files a package may list; rpm cannot
	// have more either.
	MaxFiles = MaxTagValues
	// MaxDependencies bounds the dependency entries of all kinds together.
	MaxDependencies = MaxTagValues
)

const (
	leadSize   = 96
	introSize  = 16
	entrySize  = 16
	regionSize = 16 // data of a region tag: one index entry
	// Up to readChunk bytes are allocated at once as the header claims;
	// beyond, the buffer grows with the bytes actually received, so that
	// a length that lies costs little more memory than the bytes that were
	// really sent.
	readChunk = 1 << 20
)

var (
	leadMagic   = []byte{0xed, 0xab, 0xee, 0xdb}
	headerMagic = []byte{0x8e, 0xad, 0xe8, 0x01}
)

// Header entry data types (rpmTagType).
const (
	typeNull        = 0
	typeChar        = 1
	typeInt8        = 2
	typeInt16       = 3
	typeInt32       = 4
	typeInt64       = 5
	typeString      = 6
	typeBin         = 7
	typeStringArray = 8
	typeI18NString  = 9
)

var typeNames = [...]string{"NULL", "CHAR", "INT8", "INT16", "INT32", "INT64", "STRING", "BIN", "STRING_ARRAY", "I18NSTRING"}

// typeSize is the size of one value of a fixed-size type, 0 for the string
// types.
var typeSize = [...]int64{typeNull: 0, typeChar: 1, typeInt8: 1, typeInt16: 2, typeInt32: 4, typeInt64: 8, typeBin: 1}

func isStringType(t uint32) bool {
	return t == typeString || t == typeStringArray || t == typeI18NString
}

func isIntType(t uint32) bool {
	return t == typeChar || t == typeInt8 || t == typeInt16 || t == typeInt32 || t == typeInt64
}

// Region tags mark the first index entry of a header that has a region.
const (
	tagHeaderImage      = 61
	tagHeaderSignatures = 62
	tagHeaderImmutable  = 63
)

// entry is one validated index entry.
type entry struct {
	tag, typ, offset, count uint32
	// end is the offset just past the entry's data.
	end uint32
}

// block is one validated header structure.
type block struct {
	entries []entry
	// byTag indexes entries by tag.
	byTag map[uint32]int
	// data is the data area, without the signature header's padding.
	data []byte
}

func (b *block) lookup(tag uint32) (entry, bool) {
	i, ok := b.byTag[tag]
	if !ok {
		return entry{}, false
	}
	return b.entries[i], true
}

// blob is the validated beginning of an RPM file.
type blob struct {
	// raw holds lead, signature header (with padding) and main header,
	// exactly as read.
	raw       []byte
	sig, main block
	// start and end are createrepo_c's rpm:header-range: the offsets of the
	// main header and of the payload.
	start, end int64
}

// reader reads the beginning of an RPM into one buffer.
type reader struct {
	r   io.Reader
	buf []byte
}

// read appends exactly n bytes from r to rd.buf. Memory grows with the
// bytes actually read, not with n.
func (rd *reader) read(n int64, what string) error {
	target := len(rd.buf) + int(n)
	if n <= readChunk && cap(rd.buf) < target {
		grown := make([]byte, len(rd.buf), target)
		copy(grown, rd.buf)
		rd.buf = grown
	}
	for have := int64(0); have < n; {
		k := int(min(n-have, readChunk))
		if start := len(rd.buf); start+k > cap(rd.buf) {
			// Grow fourfold, but never beyond what the header claims: the
			// buffer stays within four times the bytes actually received
			// (or readChunk).
			grown := make([]byte, start, min(max(4*cap(rd.buf), start+k), target))
			copy(grown, rd.buf)
			rd.buf = grown
		}
		start := len(rd.buf)
		rd.buf = rd.buf[:start+k]
		m, err := io.ReadFull(rd.r, rd.buf[start:])
		if err != nil {
			rd.buf = rd.buf[:start+m]
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return errorf(ErrTruncated, "file ends inside the %s (got %d of %d bytes)", what, have+int64(m), n)
			}
			return fmt.Errorf("rpm: reading the %s: %w", what, err)
		}
		have += int64(k)
	}
	return nil
}

// readBlob reads and validates the lead, the signature header and the main
// header from r, reading nothing beyond the main header.
func readBlob(r io.Reader) (*blob, error) {
	rd := &reader{r: r}
	if err := rd.read(leadSize, "lead"); err != nil {
		if !errors.Is(err, ErrTruncated) {
			return nil, err
		}
		if len(rd.buf) == 0 {
			return nil, errorf(ErrNotRPM, "empty file")
		}
		if n := min(len(rd.buf), len(leadMagic)); !bytes.Equal(rd.buf[:n], leadMagic[:n]) {
			return nil, errorf(ErrNotRPM, "%d-byte file without an RPM lead", len(rd.buf))
		}
		return nil, err
	}
	lead := rd.buf[:leadSize]
	if !bytes.Equal(lead[:4], leadMagic) {
		return nil, errorf(ErrNotRPM, "lead magic is %x, want edabeedb", lead[:4])
	}
	if major := lead[4]; major != 3 && major != 4 {
		return nil, errorf(ErrCorruptHeader, "unsupported RPM format version %d", major)
	}
	if sigType := binary.BigEndian.Uint16(lead[78:80]); sigType != 5 {
		return nil, errorf(ErrCorruptHeader, "lead signature type is %d, want 5 (header-style)", sigType)
	}

	sig, err := rd.header("signature header", MaxSignatureEntries, MaxSignatureDataSize, true)
	if err != nil {
		return nil, err
	}
	hdrAt := len(rd.buf)
	hdr, err := rd.header("header", MaxHeaderEntries, MaxHeaderDataSize, false)
	if err != nil {
		return nil, err
	}
	b := &blob{raw: rd.buf, sig: sig.block, main: hdr.block, start: int64(hdrAt), end: int64(len(rd.buf))}
	// The data slices were taken while rd.buf could still move; take them
	// again from the final buffer.
	b.sig.data = b.raw[sig.dataAt : sig.dataAt+len(sig.data)]
	b.main.data = b.raw[hdr.dataAt : hdr.dataAt+len(hdr.data)]
	return b, nil
}

// headerPos is a block plus where its data starts in the reader's buffer.
type headerPos struct {
	block
	dataAt int
}

// header reads and validates one header structure.
func (rd *reader) header(name string, maxEntries, maxData uint32, isSig bool) (headerPos, error) {
	at := len(rd.buf)
	if err := rd.read(introSize, name+" intro"); err != nil {
		return headerPos{}, err
	}
	intro := rd.buf[at : at+introSize]
	if !bytes.Equal(intro[:4], headerMagic) {
		return headerPos{}, errorf(ErrCorruptHeader, "%s magic is %x, want 8eade801", name, intro[:4])
	}
	il := binary.BigEndian.Uint32(intro[8:12])
	dl := binary.BigEndian.Uint32(intro[12:16])
	if il == 0 {
		return headerPos{}, errorf(ErrCorruptHeader, "%s has no index entries", name)
	}
	if il > maxEntries {
		return headerPos{}, errorf(ErrHeaderTooLarge, "%s index count %d exceeds limit %d", name, il, maxEntries)
	}
	if dl > maxData {
		return headerPos{}, errorf(ErrHeaderTooLarge, "%s data length %d exceeds limit %d", name, dl, maxData)
	}

	indexAt := len(rd.buf)
	if err := rd.read(int64(il)*entrySize, name+" index"); err != nil {
		return headerPos{}, err
	}
	entries := make([]entry, il)
	byTag := make(map[uint32]int, il)
	for i := range entries {
		p := rd.buf[indexAt+i*entrySize:]
		e := entry{
			tag:    binary.BigEndian.Uint32(p[0:4]),
			typ:    binary.BigEndian.Uint32(p[4:8]),
			offset: binary.BigEndian.Uint32(p[8:12]),
			count:  binary.BigEndian.Uint32(p[12:16]),
		}
		if err := checkEntry(name, i, &e, dl); err != nil {
			return headerPos{}, err
		}
		if _, dup := byTag[e.tag]; dup {
			return headerPos{}, errorf(ErrCorruptHeader, "%s has tag %d twice", name, e.tag)
		}
		byTag[e.tag] = i
		entries[i] = e
	}
	if !isSig {
		if err := checkCounts(entries, byTag); err != nil {
			return headerPos{}, err
		}
	}
	for _, e := range entries {
		if e.typ != typeBin && e.count > MaxTagValues {
			return headerPos{}, errorf(ErrHeaderTooLarge, "%s tag %d has %d values, limit %d", name, e.tag, e.count, MaxTagValues)
		}
	}

	dataAt := len(rd.buf)
	n := int64(dl)
	if isSig {
		n += int64(-dl & 7) // padding to a multiple of 8
	}
	if err := rd.read(n, name+" data"); err != nil {
		return headerPos{}, err
	}
	data := rd.buf[dataAt : dataAt+int(dl)]
	if err := checkData(name, entries, data); err != nil {
		return headerPos{}, err
	}
	return headerPos{block: block{entries: entries, byTag: byTag, data: data}, dataAt: dataAt}, nil
}

// checkEntry checks the structure of an index entry before the data is
// read, and sets e.end for fixed-size types.
func checkEntry(name string, i int, e *entry, dl uint32) error {
	if e.typ >= uint32(len(typeNames)) {
		return errorf(ErrCorruptHeader, "%s tag %d has unknown data type %d", name, e.tag, e.typ)
	}
	if int32(e.offset) < 0 || e.offset > dl {
		return errorf(ErrCorruptHeader, "%s tag %d data offset %d is outside the %d-byte data area", name, e.tag, int32(e.offset), dl)
	}
	if i == 0 && isRegionTag(e.tag) {
		if e.typ != typeBin || e.count != regionSize || int64(e.offset)+regionSize > int64(dl) {
			return errorf(ErrCorruptHeader, "%s region tag %d is malformed", name, e.tag)
		}
		e.end = e.offset + regionSize
		return nil
	}
	if e.tag < 100 {
		return errorf(ErrCorruptHeader, "%s tag %d is not a valid tag number", name, e.tag)
	}
	if e.typ == typeNull || e.count == 0 {
		return errorf(ErrCorruptHeader, "%s tag %d has no data", name, e.tag)
	}
	switch e.typ {
	case typeInt16, typeInt32, typeInt64:
		if align := uint32(typeSize[e.typ]); e.offset%align != 0 {
			return errorf(ErrCorruptHeader, "%s tag %d: %s data at offset %d is not aligned", name, e.tag, typeNames[e.typ], e.offset)
		}
	}
	if isStringType(e.typ) {
		if e.typ == typeString && e.count != 1 {
			return errorf(ErrCorruptHeader, "%s tag %d: STRING entry has count %d, want 1", name, e.tag, e.count)
		}
		// Every string takes at least its terminating NUL.
		if int64(e.offset)+int64(e.count) > int64(dl) {
			return errorf(ErrCorruptHeader, "%s tag %d: %d strings at offset %d cannot fit in the %d-byte data area", name, e.tag, e.count, e.offset, dl)
		}
	} else {
		end := int64(e.offset) + int64(e.count)*typeSize[e.typ]
		if end > int64(dl) {
			return errorf(ErrCorruptHeader, "%s tag %d: %d %s values at offset %d overrun the %d-byte data area", name, e.tag, e.count, typeNames[e.typ], e.offset, dl)
		}
		e.end = uint32(end)
	}
	return nil
}

func isRegionTag(tag uint32) bool {
	return tag == tagHeaderImage || tag == tagHeaderSignatures || tag == tagHeaderImmutable
}

// checkCounts applies the file and dependency limits of the main header.
func checkCounts(entries []entry, byTag map[uint32]int) error {
	for _, t := range []uint32{tagBasenames, tagOldFilenames} {
		if i, ok := byTag[t]; ok && entries[i].count > MaxFiles {
			return errorf(ErrTooManyFiles, "package lists %d files, limit %d", entries[i].count, MaxFiles)
		}
	}
	var deps int64
	for _, dt := range depTags {
		if i, ok := byTag[dt.name]; ok {
			deps += int64(entries[i].count)
		}
	}
	if deps > MaxDependencies {
		return errorf(ErrTooManyDependencies, "package has %d dependency entries, limit %d", deps, MaxDependencies)
	}
	return nil
}

// checkData checks the string entries against the data and that no entry's
// data overlaps the previous one's.
func checkData(name string, entries []entry, data []byte) error {
	var prevEnd uint32
	trailer := uint32(len(data)) // no region: nothing to protect
	if len(entries) > 0 && isRegionTag(entries[0].tag) {
		trailer = entries[0].offset
	}
	for i := range entries {
		e := &entries[i]
		if i == 0 && isRegionTag(e.tag) {
			continue
		}
		if e.offset < prevEnd {
			return errorf(ErrCorruptHeader, "%s tag %d: data at offset %d overlaps the previous entry's (ending at %d)", name, e.tag, e.offset, prevEnd)
		}
		if isStringType(e.typ) {
			end := int(e.offset)
			for k := uint32(0); k < e.count; k++ {
				n := bytes.IndexByte(data[end:], 0)
				if n < 0 {
					return errorf(ErrCorruptHeader, "%s tag %d: string %d of %d runs past the end of the data area", name, e.tag, k+1, e.count)
				}
				end += n + 1
			}
			e.end = uint32(end)
		}
		if e.end > trailer && e.offset < trailer+regionSize {
			return errorf(ErrCorruptHeader, "%s tag %d: data overlaps the region trailer", name, e.tag)
		}
		prevEnd = e.end
	}
	return nil
}
