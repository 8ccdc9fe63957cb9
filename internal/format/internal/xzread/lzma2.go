package xzread

import "io"

// lzma2Chunks counts the LZMA2 bytes read through it and follows their
// chunk headers to add up the uncompressed sizes they declare. A valid
// chunk produces exactly the size it declares, so once the sum is over
// the output bound the block is too large, whatever its decoding gives
// (github.com/ulikunitz/xz/lzma reports a distance beyond the capped
// dictionary as an ordinary decoding error).
type lzma2Chunks struct {
	r io.Reader
	n int64
	// declared is the sum of the uncompressed sizes of the chunks whose
	// header was read.
	declared int64
	// skip is what is left of the current chunk's data.
	skip int64
	// hdr holds the header being read; want is its length once known.
	hdr  [6]byte
	have int
	want int
	done bool
}

func (c *lzma2Chunks) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	for b := p[:n]; len(b) > 0 && !c.done; {
		if c.skip > 0 {
			k := min(c.skip, int64(len(b)))
			c.skip -= k
			b = b[k:]
			continue
		}
		c.hdr[c.have] = b[0]
		c.have++
		b = b[1:]
		ctl := c.hdr[0]
		switch {
		case c.have > 1:
		case ctl == 0x00:
			c.done = true // end of the LZMA2 data
		case ctl == 0x01 || ctl == 0x02:
			c.want = 3 // uncompressed chunk: size-1 (be16)
		case ctl >= 0xc0:
			c.want = 6 // LZMA chunk with properties
		case ctl >= 0x80:
			c.want = 5 // LZMA chunk: uncompressed size-1, compressed size-1
		default:
			c.done = true // invalid; the decoder says so
		}
		if c.done || c.have < c.want {
			continue
		}
		size := (int64(c.hdr[1])<<8 | int64(c.hdr[2])) + 1
		if ctl >= 0x80 {
			c.declared += int64(ctl&0x1f)<<16 + size
			c.skip = (int64(c.hdr[3])<<8 | int64(c.hdr[4])) + 1
		} else {
			c.declared += size
			c.skip = size
		}
		c.have, c.want = 0, 0
	}
	return n, err
}
