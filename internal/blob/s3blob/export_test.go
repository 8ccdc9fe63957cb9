package s3blob

import (
	"context"
	"time"

	"github.com/packyard/packyard/internal/blob"
)

// Upload sends the bytes of w, a writer of this package that has not ended,
// under their key without looking the key up first, as a Commit that lost a
// race to another does.
func Upload(ctx context.Context, w blob.Writer) error {
	ww := w.(*writer)
	ww.endLastPart()
	return ww.put(ctx, ww.Digest())
}

// IsExists reports whether err is the store's refusal of a conditional
// write because the key exists.
var IsExists = isExists

// Corrupt flips the byte at off among those w holds, after they were
// hashed, as failing memory or a failing disk would.
func Corrupt(w blob.Writer, off int64) error {
	ww := w.(*writer)
	if ww.f == nil {
		ww.buf[off] ^= 1
		return nil
	}
	b := make([]byte, 1)
	if _, err := ww.f.ReadAt(b, off); err != nil {
		return err
	}
	b[0] ^= 1
	_, err := ww.f.WriteAt(b, off)
	return err
}

// SetTouchAfter sets the age past which a blob stored again gets a new
// modification time.
func SetTouchAfter(s blob.Store, d time.Duration) { s.(*Store).touchAfter = d }
