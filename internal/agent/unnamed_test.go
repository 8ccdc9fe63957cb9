//go:build linux

package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTempFiles: verified temporary files, unnamed (O_TMPFILE) and named
// (past the cap on open unnamed files), are put into place atomically, over
// an existing file or as a new one, copied, dated and discarded without
// leaving anything behind.
func TestTempFiles(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(map[bool]string{false: "unnamed", true: "named"}[named], func(t *testing.T) {
			if named {
				old := maxUnnamed
				maxUnnamed = 0
				t.Cleanup(func() { maxUnnamed = old })
			}
			open0 := unnamedOpen.Load()
			dir := t.TempDir()
			body := []byte("a package's bytes\n")
			sum := sha256.Sum256(body)
			digest := hex.EncodeToString(sum[:])
			dst := filepath.Join(dir, "sub", "pkg.rpm")
			tf, err := writeVerified(dst, bytes.NewReader(body), digest, int64(len(body)))
			if err != nil {
				t.Fatal(err)
			}
			if (tf.name == "") == named {
				t.Fatalf("temporary file named %q, want named=%v", tf.name, named)
			}
			cp, err := copyTemp(tf, filepath.Join(dir, "sub", "copy.rpm"), digest, int64(len(body)))
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range []*tmpFile{tf, cp} {
				if size, _, err := x.place(); err != nil || size != int64(len(body)) {
					t.Fatalf("place %s: %d %v", x.dst, size, err)
				}
				if got, _ := os.ReadFile(x.dst); !bytes.Equal(got, body) {
					t.Fatalf("%s holds %q", x.dst, got)
				}
			}
			// Over an existing file, with a modification time at least a
			// second after the old one's.
			newer := []byte("a newer pointer file\n")
			sum = sha256.Sum256(newer)
			tf2, err := writeVerified(dst, bytes.NewReader(newer), hex.EncodeToString(sum[:]), int64(len(newer)))
			if err != nil {
				t.Fatal(err)
			}
			old, _ := os.Stat(dst)
			if err := tf2.bumpMTime(old.ModTime()); err != nil {
				t.Fatal(err)
			}
			if _, mt, err := tf2.place(); err != nil || mt.Before(old.ModTime().Truncate(time.Second).Add(time.Second)) {
				t.Fatalf("replace: %v %v (old %v)", mt, err, old.ModTime())
			}
			if got, _ := os.ReadFile(dst); !bytes.Equal(got, newer) {
				t.Fatalf("replaced file holds %q", got)
			}
			// Bytes with the wrong digest are refused; discarded files
			// leave nothing.
			if _, err := writeVerified(filepath.Join(dir, "sub", "bad"), bytes.NewReader(body), digest[:63]+"0", int64(len(body))); err == nil {
				t.Fatal("wrong digest accepted")
			}
			tf3, err := writeVerified(filepath.Join(dir, "sub", "never"), bytes.NewReader(body), digest, int64(len(body)))
			if err != nil {
				t.Fatal(err)
			}
			tf3.discard()
			ents, _ := os.ReadDir(filepath.Join(dir, "sub"))
			if len(ents) != 2 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("directory holds %v, want pkg.rpm and copy.rpm", names)
			}
			if n := unnamedOpen.Load(); n != open0 {
				t.Errorf("%d unnamed files counted open, %d before", n, open0)
			}
		})
	}
}
