package archtest

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz/lzma"
)

// bombPrefix returns the start of a tar archive: the valid .PKGINFO of s,
// then the header of usr/share/zeros, a file of size zero bytes whose
// content is to follow.
func bombPrefix(s Spec, size int64) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	writeEntry(tw, regular(".PKGINFO", 0o644, s.PkgInfo()), s.buildDate())
	h := tar.Header{Typeflag: tar.TypeReg, Name: "usr/share/zeros", Mode: 0o644, Size: size, ModTime: s.buildDate(), Uname: "root", Gname: "root"}
	if err := tw.WriteHeader(&h); err != nil {
		panic(err)
	}
	// The header is written; the archive is left open on purpose.
	return b.Bytes()
}

// zstdBomb returns a zstd frame of a tar archive whose usr/share/zeros
// holds 1 GiB of zeros: the prefix in a raw block, then 8192 RLE blocks
// of 128 KiB (4 bytes each), a 1 MiB window, no checksum (RFC 8878).
func zstdBomb(s Spec) []byte {
	const block = 128 << 10
	const blocks = 8192
	prefix := bombPrefix(s, block*blocks)
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 10 << 3} // no content size; window 1<<(10+10)
	b = zstdBlockHeader(b, 0, len(prefix), false)
	b = append(b, prefix...)
	for i := range blocks {
		b = zstdBlockHeader(b, 1, block, i == blocks-1)
		b = append(b, 0)
	}
	return b
}

// zstdWindowFrame returns data as one zstd frame of raw blocks that
// declares a window of 1<<windowLog bytes.
func zstdWindowFrame(data []byte, windowLog int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte(windowLog-10) << 3}
	for {
		n := min(len(data), 128<<10)
		b = zstdBlockHeader(b, 0, n, n == len(data))
		b = append(b, data[:n]...)
		data = data[n:]
		if len(data) == 0 {
			return b
		}
	}
}

// zstdBlockHeader appends a block header: last flag, type (0 raw, 1 RLE)
// and size.
func zstdBlockHeader(b []byte, typ, size int, last bool) []byte {
	h := size<<3 | typ<<1
	if last {
		h |= 1
	}
	return append(b, byte(h), byte(h>>8), byte(h>>16))
}

// gzipBomb returns gzip members: one of the prefix, then 128 of 1 MiB of
// zeros each (about 1 KiB each).
func gzipBomb(s Spec) []byte {
	const members = 128
	zeros := gzipMember(make([]byte, 1<<20))
	b := gzipMember(bombPrefix(s, members<<20))
	for range members {
		b = append(b, zeros...)
	}
	return b
}

func gzipMember(data []byte) []byte {
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		panic(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// xzBomb returns a valid xz stream (no check) of one block whose LZMA2
// data is the prefix, then 512 copies of the chunks of 2 MiB of zeros,
// each copy starting with a dictionary reset so that it decodes the same
// wherever it is: 1 GiB of zeros in about 100 KiB, with a 1 MiB
// dictionary.
func xzBomb(s Spec) []byte {
	const unit = 2 << 20
	const copies = 512
	prefix := bombPrefix(s, unit*copies)
	lz := lzma2Data(prefix)
	zeros := lzma2Data(make([]byte, unit))
	for range copies {
		lz = append(lz, zeros...)
	}
	lz = append(lz, 0) // end of the LZMA2 data
	return xzStream(lz, int64(len(prefix))+unit*copies, 16)
}

// lzma2Data returns the LZMA2 chunks of data, starting with a dictionary
// reset, without the end marker.
func lzma2Data(data []byte) []byte {
	var b bytes.Buffer
	w, err := lzma.Writer2Config{DictCap: 1 << 20}.NewWriter2(&b)
	if err != nil {
		panic(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		panic(err)
	}
	out := b.Bytes()
	if len(out) == 0 || out[0]&0xe0 != 0xe0 && out[0] != 0x01 || out[len(out)-1] != 0 {
		panic(fmt.Sprintf("archtest: unexpected LZMA2 framing % x … % x", out[:1], out[len(out)-1:]))
	}
	return out[:len(out)-1]
}

// xzStream wraps LZMA2 data (with its end marker) of size uncompressed
// bytes in an xz stream of one block without check, whose header
// declares the dictionary size property dictProp
// (https://tukaani.org/xz/xz-file-format.txt).
func xzStream(lz []byte, size int64, dictProp byte) []byte {
	le32 := func(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
	pad4 := func(b []byte, n int) []byte {
		for ; n%4 != 0; n++ {
			b = append(b, 0)
		}
		return b
	}
	flags := []byte{0, 0} // check none
	out := append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, flags...)
	out = le32(out, crc32.ChecksumIEEE(flags))
	// Block header: size, flags (one filter, no sizes), LZMA2 with one
	// property byte, padding, CRC32.
	hdr := []byte{2, 0x00, 0x21, 1, dictProp}
	hdr = pad4(hdr, len(hdr)+4)[:8]
	hdr = le32(hdr, crc32.ChecksumIEEE(hdr))
	out = append(out, hdr...)
	out = append(out, lz...)
	out = pad4(out, len(lz))
	index := []byte{0, 1}
	index = binary.AppendUvarint(index, uint64(len(hdr)+len(lz)))
	index = binary.AppendUvarint(index, uint64(size))
	index = pad4(index, len(index))
	index = le32(index, crc32.ChecksumIEEE(index))
	out = append(out, index...)
	footer := le32(nil, uint32(len(index)/4-1))
	footer = append(footer, flags...)
	out = le32(out, crc32.ChecksumIEEE(footer))
	out = append(out, footer...)
	return append(out, 'Y', 'Z')
}
