// Package blobbatch is the wire format of POST /api/v1/blobs, which
// streams several blobs in one response: for each blob asked for, in
// order, a line "DIGEST SIZE\n" followed by exactly SIZE bytes, or
// "DIGEST -1\n" for a blob the store does not hold.
package blobbatch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxDigests bounds the blobs of one request.
const MaxDigests = 4096

// Missing is the size announced for a blob the store does not hold.
const Missing = -1

// maxHeader bounds a header line: 64 hex digits, a space, a size.
const maxHeader = 96

// WriteHeader writes the line that precedes a blob (or says it is
// missing, with size Missing).
func WriteHeader(w io.Writer, digest string, size int64) error {
	_, err := fmt.Fprintf(w, "%s %d\n", digest, size)
	return err
}

// ErrBadHeader means a header line is not "DIGEST SIZE".
var ErrBadHeader = errors.New("bad blob batch header")

// ReadHeader reads the line before a blob. It reads at most a bounded
// number of bytes, whatever the stream holds.
func ReadHeader(br *bufio.Reader) (digest string, size int64, err error) {
	var line []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", 0, err
		}
		if b == '\n' {
			break
		}
		if len(line) >= maxHeader {
			return "", 0, fmt.Errorf("%w: line longer than %d bytes", ErrBadHeader, maxHeader)
		}
		line = append(line, b)
	}
	d, s, ok := strings.Cut(string(line), " ")
	if !ok || len(d) != 64 {
		return "", 0, fmt.Errorf("%w: %q", ErrBadHeader, line)
	}
	size, err = strconv.ParseInt(s, 10, 64)
	if err != nil || size < Missing {
		return "", 0, fmt.Errorf("%w: size in %q", ErrBadHeader, line)
	}
	return d, size, nil
}

// Walk calls fn for each blob of a whole response held in memory, with
// the blob's bytes (nil for a missing one); fn may modify them.
func Walk(b []byte, fn func(digest string, data []byte)) error {
	br := bufio.NewReader(strings.NewReader(string(b)))
	off := 0
	for {
		d, size, err := ReadHeader(br)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		off += len(d) + 1 + len(strconv.FormatInt(size, 10)) + 1
		if size == Missing {
			fn(d, nil)
			continue
		}
		if int64(len(b)-off) < size {
			return io.ErrUnexpectedEOF
		}
		fn(d, b[off:off+int(size)])
		if _, err := br.Discard(int(size)); err != nil {
			return err
		}
		off += int(size)
	}
}
