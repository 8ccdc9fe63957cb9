package deb

import (
	"errors"
	"io"

	"github.com/packyard/packyard/internal/format/internal/xzread"
)

const (
	// xzMaxBlocks bounds the blocks of one xz member; dpkg-deb writes
	// one block, or (multi-threaded) blocks of at least 1 MiB.
	xzMaxBlocks = 64
	// xzMaxDictionaries bounds the dictionaries of all blocks together,
	// allocated one after the other, in multiples of the output bound.
	// Real streams have one block, or blocks whose headers give their
	// size and so need small dictionaries.
	xzMaxDictionaries = 16
)

// newXZReader returns a reader of the xz data in r whose output is at
// most maxOut bytes, with at most xzMaxBlocks blocks whose dictionaries
// (each at most what maxOut needs, see xzread) add up to at most
// xzMaxDictionaries times maxOut. Errors over these bounds wrap
// ErrTooLarge.
func newXZReader(r io.Reader, maxOut int64) io.Reader {
	blocks := 0
	dictLeft := xzMaxDictionaries*maxOut + xzMaxBlocks*xzread.MinDict
	return debXZ{xzread.NewReader(r, xzread.Config{
		MaxOut: maxOut,
		Reserve: func(dict int64) error {
			if blocks == xzMaxBlocks {
				return debErrorf(ErrTooLarge, "more than %d xz blocks", xzMaxBlocks)
			}
			blocks++
			if dict > dictLeft {
				return debErrorf(ErrTooLarge, "xz blocks need more than %d bytes of dictionaries", xzMaxDictionaries*maxOut)
			}
			dictLeft -= dict
			return nil
		},
	})}
}

// debXZ turns the errors of its reader over the output bound into errors
// of this package.
type debXZ struct{ r io.Reader }

func (d debXZ) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if errors.Is(err, xzread.ErrTooLarge) {
		err = debErrorf(ErrTooLarge, "%v", err)
	}
	return n, err
}
