package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/ulikunitz/xz"
)

// APT (through liblzma without LZMA_CONCATENATED) reads only the first
// stream of an .xz file, so xz outputs cannot be concatenated streams the
// way gzip members and zstd frames are. Instead an xz output is ONE
// stream whose blocks are the chunks: each chunk is compressed as a
// stream of one block, and its block (header, data, padding, check) is
// stored as the chunk's part; the output's head is the stream header and
// its foot the index of every block's sizes plus the stream footer
// (https://tukaani.org/xz/xz-file-format.txt, sections 2 and 4). The foot
// is rebuilt on every publish; it is a few bytes per chunk.

// xzRecord is one block's entry in an xz index.
type xzRecord struct {
	unpadded, uncompressed uint64
}

const xzHeaderLen = 12

// xzConfig compresses chunks of at most a few hundred kilobytes: a 256 KiB
// dictionary gives the same output as the default 8 MiB one, whose writer
// allocates about 48 MiB each time (measured: 14 ms and 50 MB per 100 KB
// chunk with the default, 4.8 ms and 2.5 MB with this).
var xzConfig = xz.WriterConfig{DictCap: 256 << 10}

// xzBlock compresses data as one xz block and returns the block's bytes
// and its index record. Empty data has no block.
func xzBlock(data []byte) ([]byte, xzRecord, error) {
	if len(data) == 0 {
		return nil, xzRecord{}, nil
	}
	var buf bytes.Buffer
	w, err := xzConfig.NewWriter(&buf)
	if err != nil {
		return nil, xzRecord{}, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, xzRecord{}, err
	}
	if err := w.Close(); err != nil {
		return nil, xzRecord{}, err
	}
	s := buf.Bytes()
	if len(s) < 2*xzHeaderLen+8 {
		return nil, xzRecord{}, errors.New("xz: stream too short")
	}
	foot := s[len(s)-xzHeaderLen:]
	indexLen := (int(binary.LittleEndian.Uint32(foot[4:8])) + 1) * 4
	end := len(s) - xzHeaderLen - indexLen
	if end < xzHeaderLen {
		return nil, xzRecord{}, errors.New("xz: bad index size")
	}
	index := s[end : len(s)-xzHeaderLen]
	if index[0] != 0 {
		return nil, xzRecord{}, errors.New("xz: no index indicator")
	}
	n, k := binary.Uvarint(index[1:])
	if k <= 0 || n != 1 {
		return nil, xzRecord{}, fmt.Errorf("xz: stream has %d blocks, want 1", n)
	}
	rest := index[1+k:]
	unpadded, k1 := binary.Uvarint(rest)
	if k1 <= 0 {
		return nil, xzRecord{}, errors.New("xz: bad index record")
	}
	uncompressed, k2 := binary.Uvarint(rest[k1:])
	if k2 <= 0 || uncompressed != uint64(len(data)) {
		return nil, xzRecord{}, errors.New("xz: bad index record")
	}
	block := append([]byte(nil), s[xzHeaderLen:end]...)
	return block, xzRecord{unpadded: unpadded, uncompressed: uncompressed}, nil
}

// xzStreamHeader is the header (and its flags) of every stream xzBlock
// makes, taken from the writer itself.
var xzStreamHeader = func() []byte {
	var buf bytes.Buffer
	w, err := xzConfig.NewWriter(&buf)
	if err == nil {
		_, _ = w.Write([]byte{0})
		err = w.Close()
	}
	if err != nil || buf.Len() < xzHeaderLen {
		panic("xz: cannot make a stream header")
	}
	return append([]byte(nil), buf.Bytes()[:xzHeaderLen]...)
}()

// xzTail returns the index of recs and the stream footer.
func xzTail(recs []xzRecord) []byte {
	idx := []byte{0}
	idx = binary.AppendUvarint(idx, uint64(len(recs)))
	for _, r := range recs {
		idx = binary.AppendUvarint(idx, r.unpadded)
		idx = binary.AppendUvarint(idx, r.uncompressed)
	}
	for len(idx)%4 != 0 {
		idx = append(idx, 0)
	}
	idx = binary.LittleEndian.AppendUint32(idx, crc32.ChecksumIEEE(idx))
	var foot []byte
	body := binary.LittleEndian.AppendUint32(nil, uint32(len(idx)/4-1))
	body = append(body, xzStreamHeader[6:8]...) // stream flags
	foot = binary.LittleEndian.AppendUint32(foot, crc32.ChecksumIEEE(body))
	foot = append(foot, body...)
	foot = append(foot, 'Y', 'Z')
	return append(idx, foot...)
}
