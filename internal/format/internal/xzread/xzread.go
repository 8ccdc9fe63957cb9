// Package xzread decompresses xz data (https://tukaani.org/xz/xz-file-format.txt)
// with bounded memory, for package readers that take files from anyone.
//
// The container is read here, and only the LZMA2 data of each block is
// handed to github.com/ulikunitz/xz/lzma, because github.com/ulikunitz/xz
// allocates at once the dictionary a block header declares, up to 4 GiB,
// whatever the size of the data. A block cannot refer further back than
// the bytes it has produced, so a dictionary of what the reader may still
// produce (at most Config.MaxOut bytes) is always enough; a block that
// would produce more is caught by its LZMA2 chunk headers (see
// lzma2Chunks). Before a block's dictionary is allocated, Config.Reserve
// may refuse it.
//
//	stream   header (12 bytes), blocks, index, footer (12 bytes)
//	block    header (4 to 1024 bytes, CRC32), LZMA2 data, padding to 4
//	         bytes, check (CRC32, CRC64, SHA-256 or none)
//	index    0x00, record count, {unpadded size, uncompressed size} per
//	         block, padding to 4 bytes, CRC32
//
// Streams may be concatenated, with zero padding in multiples of 4 bytes
// between and after them. Every header, check, index and footer is
// verified.
package xzread

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"math"

	"github.com/ulikunitz/xz/lzma"
)

// ErrTooLarge is what errors over Config.MaxOut match with errors.Is.
var ErrTooLarge = errors.New("xz: data over the size bound")

// sizeError is an error over Config.MaxOut.
type sizeError struct{ msg string }

func (e *sizeError) Error() string        { return e.msg }
func (e *sizeError) Is(target error) bool { return target == ErrTooLarge }

// MinDict is the smallest dictionary a block is given, whatever it
// declares; Config.Reserve is never called with less.
const MinDict = lzma.MinDictCap

// Config bounds a Reader.
type Config struct {
	// MaxOut bounds the decompressed output in bytes; more gives an
	// error matching ErrTooLarge, as does a block whose header or LZMA2
	// chunk headers declare more. Zero means no bound.
	MaxOut int64
	// Reserve, when not nil, is called with the size of each block's
	// dictionary before it is allocated: the size the block header
	// declares, capped by the block's uncompressed size when the header
	// gives it and by what MaxOut still allows, and at least MinDict. An
	// error stops the reader and is returned as it is.
	Reserve func(dict int64) error
}

// lzma2FilterID is the only filter accepted.
const lzma2FilterID = 0x21

var (
	xzHeaderMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	xzFooterMagic = []byte{'Y', 'Z'}
	crc64Table    = crc64.MakeTable(crc64.ECMA)
)

// xzRecord is one block as the index lists it.
type xzRecord struct {
	unpadded, uncompressed int64
}

// Reader decompresses concatenated xz streams within the bounds of its
// Config, verifying every header, check and index.
type Reader struct {
	r       *bufio.Reader
	maxOut  int64
	reserve func(int64) error
	out     int64
	err     error

	// Stream state.
	streams  int
	inStream bool
	flags    [2]byte
	records  []xzRecord

	// Block state; lz is nil between blocks.
	lz                   io.Reader
	comp                 *lzma2Chunks
	check                hash.Hash
	headerSize           int64
	declComp, declUncomp int64
	blockOut             int64
}

// NewReader returns a reader of the xz data in r, bounded by c.
func NewReader(r io.Reader, c Config) *Reader {
	x := &Reader{r: bufio.NewReaderSize(r, 4096), maxOut: c.MaxOut, reserve: c.Reserve}
	if x.maxOut <= 0 {
		x.maxOut = math.MaxInt64
	}
	return x
}

// Read reads decompressed data; see Config for the errors over the bounds.
func (x *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		// The LZMA2 reader returns 0, nil for an empty p, on which the
		// loop below would spin.
		return 0, x.err
	}
	for x.err == nil {
		if x.lz == nil {
			x.err = x.next()
			continue
		}
		n, err := x.lz.Read(p)
		if x.check != nil {
			x.check.Write(p[:n])
		}
		x.blockOut += int64(n)
		x.out += int64(n)
		switch {
		case x.out > x.maxOut || x.out-x.blockOut+x.comp.declared > x.maxOut:
			err = x.tooLarge()
		case x.declUncomp >= 0 && x.blockOut > x.declUncomp:
			err = fmt.Errorf("xz: block holds more than the %d bytes its header says", x.declUncomp)
		case err == io.EOF:
			err = x.endBlock()
		case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
			// An LZMA2 decoding error; io.ErrUnexpectedEOF is a
			// truncated member, which the caller reports.
			err = fmt.Errorf("xz: %w", err)
		}
		x.err = err
		if n > 0 {
			return n, nil
		}
	}
	return 0, x.err
}

// next reads what follows a block or a stream: the next block header, an
// index and stream footer, stream padding, a stream header or the end.
func (x *Reader) next() error {
	if !x.inStream {
		for {
			b, err := x.r.Peek(4)
			if len(b) == 0 && err == io.EOF {
				if x.streams == 0 {
					return io.ErrUnexpectedEOF
				}
				return io.EOF
			}
			if len(b) < 4 {
				return noEOF(err)
			}
			if x.streams == 0 || !bytes.Equal(b, []byte{0, 0, 0, 0}) {
				break
			}
			x.r.Discard(4)
		}
		if err := x.readStreamHeader(); err != nil {
			return err
		}
	}
	b0, err := x.r.ReadByte()
	if err != nil {
		return noEOF(err)
	}
	if b0 == 0 {
		return x.readIndex()
	}
	return x.startBlock(b0)
}

func (x *Reader) readStreamHeader() error {
	var h [12]byte
	if _, err := io.ReadFull(x.r, h[:]); err != nil {
		return noEOF(err)
	}
	if !bytes.Equal(h[:6], xzHeaderMagic) {
		return errors.New("xz: not an xz stream")
	}
	if crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:]) {
		return errors.New("xz: stream header CRC32 mismatch")
	}
	if h[6] != 0 || h[7]&0xf0 != 0 {
		return fmt.Errorf("xz: unsupported stream flags %#x %#x", h[6], h[7])
	}
	if _, err := xzCheckSize(h[7]); err != nil {
		return err
	}
	x.flags = [2]byte{h[6], h[7]}
	x.inStream = true
	x.streams++
	x.records = x.records[:0]
	return nil
}

// tooLarge returns the error over MaxOut.
func (x *Reader) tooLarge() error {
	return &sizeError{fmt.Sprintf("decompresses to more than %d bytes", x.maxOut)}
}

// xzCheckSize returns the size of the supported check types.
func xzCheckSize(t byte) (int, error) {
	switch t {
	case 0x00:
		return 0, nil
	case 0x01:
		return 4, nil
	case 0x04:
		return 8, nil
	case 0x0a:
		return 32, nil
	}
	return 0, fmt.Errorf("xz: unsupported check type %#x", t)
}

func (x *Reader) newCheck() hash.Hash {
	switch x.flags[1] {
	case 0x01:
		return crc32.NewIEEE()
	case 0x04:
		return crc64.New(crc64Table)
	case 0x0a:
		return sha256.New()
	}
	return nil
}

func (x *Reader) startBlock(b0 byte) error {
	size := (int(b0) + 1) * 4
	var buf [1024]byte
	h := buf[:size]
	h[0] = b0
	if _, err := io.ReadFull(x.r, h[1:]); err != nil {
		return noEOF(err)
	}
	if crc32.ChecksumIEEE(h[:size-4]) != binary.LittleEndian.Uint32(h[size-4:]) {
		return errors.New("xz: block header CRC32 mismatch")
	}
	flags := h[1]
	if flags&0x3c != 0 {
		return fmt.Errorf("xz: reserved block flags %#x", flags)
	}
	if flags&0x03 != 0 {
		return fmt.Errorf("xz: a chain of %d filters (only LZMA2 alone is supported)", flags&0x03+1)
	}
	rest := h[2 : size-4]
	x.declComp, x.declUncomp = -1, -1
	if flags&0x40 != 0 {
		v, n, err := xzVLI(rest)
		if err != nil || v == 0 || v > 1<<62 {
			return errors.New("xz: invalid compressed size in a block header")
		}
		x.declComp, rest = int64(v), rest[n:]
	}
	if flags&0x80 != 0 {
		v, n, err := xzVLI(rest)
		if err != nil || v > 1<<62 {
			return errors.New("xz: invalid uncompressed size in a block header")
		}
		x.declUncomp, rest = int64(v), rest[n:]
	}
	id, n, err := xzVLI(rest)
	if err != nil {
		return errors.New("xz: invalid filter flags in a block header")
	}
	rest = rest[n:]
	if id != lzma2FilterID {
		return fmt.Errorf("xz: unsupported filter %#x (only LZMA2 is supported)", id)
	}
	psize, n, err := xzVLI(rest)
	if err != nil || psize != 1 || len(rest) < n+1 {
		return errors.New("xz: invalid LZMA2 filter properties")
	}
	prop := rest[n]
	rest = rest[n+1:]
	if prop > 40 {
		return fmt.Errorf("xz: invalid LZMA2 dictionary size %#x", prop)
	}
	if !bytes.Equal(rest, make([]byte, len(rest))) {
		return errors.New("xz: non-zero block header padding")
	}
	dict := int64(1<<32 - 1)
	if prop < 40 {
		dict = (2 | int64(prop&1)) << (prop/2 + 11)
	}
	// A block refers back at most as far as it has produced, so its
	// dictionary need not be larger than its output: the size its header
	// gives, or else what may still be produced within maxOut.
	if x.declUncomp >= 0 {
		if x.declUncomp > x.maxOut-x.out {
			return x.tooLarge()
		}
		dict = min(dict, x.declUncomp+1)
	} else {
		// A block that refers further back than this produces more than
		// maxOut, which its chunk headers show (see lzma2Chunks).
		if left := x.maxOut - x.out; left < dict-1 {
			dict = left + 1
		}
	}
	dict = max(dict, MinDict)
	if x.reserve != nil {
		if err := x.reserve(dict); err != nil {
			return err
		}
	}
	x.comp = &lzma2Chunks{r: x.r}
	lz, err := lzma.Reader2Config{DictCap: int(dict)}.NewReader2(x.comp)
	if err != nil {
		return fmt.Errorf("xz: %w", err)
	}
	x.lz = lz
	x.check = x.newCheck()
	x.headerSize = int64(size)
	x.blockOut = 0
	return nil
}

// endBlock reads a block's padding and check once its LZMA2 data ended.
func (x *Reader) endBlock() error {
	x.lz = nil
	comp := x.comp.n
	if x.declComp >= 0 && comp != x.declComp {
		return fmt.Errorf("xz: block of %d compressed bytes, its header says %d", comp, x.declComp)
	}
	if x.declUncomp >= 0 && x.blockOut != x.declUncomp {
		return fmt.Errorf("xz: block of %d bytes, its header says %d", x.blockOut, x.declUncomp)
	}
	var buf [32]byte
	pad := buf[:(4-(x.headerSize+comp)%4)%4]
	if _, err := io.ReadFull(x.r, pad); err != nil {
		return noEOF(err)
	}
	if !bytes.Equal(pad, make([]byte, len(pad))) {
		return errors.New("xz: non-zero block padding")
	}
	size, _ := xzCheckSize(x.flags[1])
	sum := buf[:size]
	if _, err := io.ReadFull(x.r, sum); err != nil {
		return noEOF(err)
	}
	var ok bool
	switch c := x.check.(type) {
	case nil:
		ok = true
	case hash.Hash32:
		ok = c.Sum32() == binary.LittleEndian.Uint32(sum)
	case hash.Hash64:
		ok = c.Sum64() == binary.LittleEndian.Uint64(sum)
	default:
		ok = bytes.Equal(c.Sum(nil), sum)
	}
	if !ok {
		return errors.New("xz: block check mismatch")
	}
	x.records = append(x.records, xzRecord{unpadded: x.headerSize + comp + int64(size), uncompressed: x.blockOut})
	return nil
}

// xzIndexReader reads the index, computing its CRC32 and size.
type xzIndexReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	n   int64
}

func (ir *xzIndexReader) ReadByte() (byte, error) {
	c, err := ir.r.ReadByte()
	if err == nil {
		ir.crc.Write([]byte{c})
		ir.n++
	}
	return c, err
}

// readIndex reads the index (its indicator byte already read) and the
// stream footer, and checks both against the blocks read.
func (x *Reader) readIndex() error {
	ir := &xzIndexReader{r: x.r, crc: crc32.NewIEEE(), n: 1}
	ir.crc.Write([]byte{0})
	count, err := xzReadVLI(ir)
	if err != nil {
		return err
	}
	if count != uint64(len(x.records)) {
		return fmt.Errorf("xz: index lists %d blocks, the stream has %d", count, len(x.records))
	}
	for _, rec := range x.records {
		unpadded, err := xzReadVLI(ir)
		if err != nil {
			return err
		}
		uncompressed, err := xzReadVLI(ir)
		if err != nil {
			return err
		}
		if unpadded != uint64(rec.unpadded) || uncompressed != uint64(rec.uncompressed) {
			return errors.New("xz: index does not match the blocks")
		}
	}
	for ir.n%4 != 0 {
		c, err := ir.ReadByte()
		if err != nil {
			return noEOF(err)
		}
		if c != 0 {
			return errors.New("xz: non-zero index padding")
		}
	}
	var tail [16]byte // index CRC32, then the stream footer
	if _, err := io.ReadFull(x.r, tail[:]); err != nil {
		return noEOF(err)
	}
	if ir.crc.Sum32() != binary.LittleEndian.Uint32(tail[:4]) {
		return errors.New("xz: index CRC32 mismatch")
	}
	f := tail[4:]
	if crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f[:4]) {
		return errors.New("xz: stream footer CRC32 mismatch")
	}
	if !bytes.Equal(f[10:12], xzFooterMagic) {
		return errors.New("xz: bad stream footer magic")
	}
	if (int64(binary.LittleEndian.Uint32(f[4:8]))+1)*4 != ir.n+4 {
		return errors.New("xz: stream footer does not match the index size")
	}
	if f[8] != x.flags[0] || f[9] != x.flags[1] {
		return errors.New("xz: stream footer flags differ from the header's")
	}
	x.inStream = false
	return nil
}

// xzVLI decodes a variable-length integer at the start of b, returning
// it and its length.
func xzVLI(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if i > 0 && b[i] == 0 {
				return 0, 0, errors.New("xz: non-minimal integer encoding")
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("xz: invalid integer encoding")
}

// xzReadVLI reads a variable-length integer.
func xzReadVLI(r io.ByteReader) (uint64, error) {
	var buf [9]byte
	for i := range buf {
		c, err := r.ReadByte()
		if err != nil {
			return 0, noEOF(err)
		}
		buf[i] = c
		if c&0x80 == 0 {
			v, _, err := xzVLI(buf[:i+1])
			return v, err
		}
	}
	return 0, errors.New("xz: invalid integer encoding")
}

// noEOF turns io.EOF, which means truncated data inside a structure, into
// io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// DeclaredSize returns the uncompressed size the index of b declares,
// when b is exactly one xz stream (optionally followed by stream padding)
// whose footer, index and block sizes account for every byte of it;
// false otherwise. A caller that holds a small compressed file whole uses
// it to bound MaxOut, and with it the dictionary a block is given, by
// what the file holds rather than by what its header asks for: the
// reader still checks every size against the data.
func DeclaredSize(b []byte) (int64, bool) {
	for len(b) >= 4 && binary.LittleEndian.Uint32(b[len(b)-4:]) == 0 {
		b = b[:len(b)-4]
	}
	if len(b) < 24 || !bytes.Equal(b[:6], xzHeaderMagic) {
		return 0, false
	}
	f := b[len(b)-12:]
	if !bytes.Equal(f[10:], xzFooterMagic) || crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f[:4]) {
		return 0, false
	}
	back := (int64(binary.LittleEndian.Uint32(f[4:8])) + 1) * 4
	if back < 8 || back > int64(len(b)-24) {
		return 0, false
	}
	idx := b[len(b)-12-int(back) : len(b)-12]
	if idx[0] != 0 || crc32.ChecksumIEEE(idx[:len(idx)-4]) != binary.LittleEndian.Uint32(idx[len(idx)-4:]) {
		return 0, false
	}
	p := idx[1 : len(idx)-4]
	count, n, err := xzVLI(p)
	if err != nil || count > 1<<16 {
		return 0, false
	}
	p = p[n:]
	var total, blocks int64
	for range count {
		unpadded, n, err := xzVLI(p)
		if err != nil || unpadded == 0 || unpadded > 1<<40 {
			return 0, false
		}
		p = p[n:]
		uncomp, n, err := xzVLI(p)
		if err != nil || uncomp > 1<<40 {
			return 0, false
		}
		p = p[n:]
		blocks += (int64(unpadded) + 3) &^ 3
		total += int64(uncomp)
	}
	if 12+blocks+back+12 != int64(len(b)) {
		return 0, false
	}
	return total, true
}
