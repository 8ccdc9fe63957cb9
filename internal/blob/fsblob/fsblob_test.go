package fsblob_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blob/blobtest"
	"github.com/packyard/packyard/internal/blob/fsblob"
)

func TestStore(t *testing.T) {
	for _, named := range []bool{false, true} {
		t.Run(map[bool]string{false: "O_TMPFILE", true: "NamedTemps"}[named], func(t *testing.T) {
			blobtest.Run(t, func(t *testing.T) blob.Store {
				s := open(t, t.TempDir())
				if named {
					s.UseNamedTemps()
				}
				// Registered before Run's Close, so it runs after it: every
				// case of the suite must leave tmp/ empty.
				t.Cleanup(func() { checkNoTemp(t, s) })
				return s
			})
		})
	}
}

// TestTmpfile: on this machine's filesystem (ext4, tmpfs) writes go through
// unnamed files, which need no directory entry in tmp/.
func TestTmpfile(t *testing.T) {
	s := open(t, t.TempDir())
	w, err := s.Create(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !s.UsesTmpfile() {
		t.Fatal("the store fell back to named temporary files")
	}
	if _, err := w.Write([]byte("unnamed")); err != nil {
		t.Fatal(err)
	}
	checkNoTemp(t, s)
	info, err := w.Commit(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(s.Path(info.Digest)); err != nil || string(got) != "unnamed" {
		t.Fatalf("committed blob: %q, %v", got, err)
	}
	checkNoTemp(t, s)
}

func TestLayout(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	content := []byte("layout")
	d := put(t, s, content)
	want := filepath.Join(dir, "sha256", string(d[:2]), string(d))
	if got := s.Path(d); got != want {
		t.Errorf("Path: got %s, want %s", got, want)
	}
	got, err := os.ReadFile(want)
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("reading %s: %q, %v; want %q", want, got, err, content)
	}
	for _, bad := range []blob.Digest{"", "../../etc/passwd", blob.Digest("../" + string(d[3:]))} {
		if got := s.Path(bad); got != "" {
			t.Errorf("Path(%q) = %q, want \"\"", bad, got)
		}
	}
}

func TestOpenRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	s.UseNamedTemps()
	d := put(t, s, []byte("committed before the crash"))

	// A process killed mid-write leaves its temporary file behind.
	w, err := s.Create(t.Context(), 0)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := w.Write([]byte("never committed")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "put-123"), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp", "stray", "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if n, err := s.TempCount(); err != nil || n != 3 {
		t.Fatalf("TempCount before reopening: %d, %v; want 3", n, err)
	}

	s = open(t, dir)
	checkNoTemp(t, s)
	if got, err := blob.ReadAll(t.Context(), s, d); err != nil || string(got) != "committed before the crash" {
		t.Errorf("committed blob after reopening: %q, %v", got, err)
	}
	if err := w.Cancel(t.Context()); err != nil {
		t.Errorf("Cancel of a writer whose file was removed: %v", err)
	}
}

func TestNothingLeftInTmp(t *testing.T) {
	content := []byte("some bytes")
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, s *fsblob.Store, w blob.Writer) error
	}{
		{"Commit", func(t *testing.T, s *fsblob.Store, w blob.Writer) error {
			_, err := w.Commit(t.Context(), blob.DigestOf(content))
			return err
		}},
		{"CommitExisting", func(t *testing.T, s *fsblob.Store, w blob.Writer) error {
			_, err := w.Commit(t.Context(), "")
			if err != nil {
				return err
			}
			_, err = blob.Put(t.Context(), s, content)
			return err
		}},
		{"DigestMismatch", func(t *testing.T, s *fsblob.Store, w blob.Writer) error {
			_, err := w.Commit(t.Context(), blob.DigestOf(nil))
			if !errors.Is(err, blob.ErrDigestMismatch) {
				t.Errorf("Commit: got %v, want ErrDigestMismatch", err)
			}
			return nil
		}},
		{"Cancel", func(t *testing.T, s *fsblob.Store, w blob.Writer) error { return w.Cancel(t.Context()) }},
		{"TooLarge", func(t *testing.T, s *fsblob.Store, w blob.Writer) error {
			if _, err := w.Write(make([]byte, 1<<20)); !errors.Is(err, blob.ErrTooLarge) {
				t.Errorf("Write: got %v, want ErrTooLarge", err)
			}
			return w.Cancel(t.Context())
		}},
	} {
		for _, named := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/named=%v", tc.name, named), func(t *testing.T) {
				s := open(t, t.TempDir())
				want := 0 // an unnamed file has no entry in tmp/
				if named {
					s.UseNamedTemps()
					want = 1
				}
				w, err := s.Create(t.Context(), 1000)
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				if _, err := w.Write(content); err != nil {
					t.Fatalf("Write: %v", err)
				}
				if n, err := s.TempCount(); err != nil || n != want {
					t.Errorf("TempCount while writing: %d, %v; want %d", n, err, want)
				}
				if err := tc.end(t, s, w); err != nil {
					t.Fatal(err)
				}
				checkNoTemp(t, s)
			})
		}
	}
}

func TestBlobMode(t *testing.T) {
	s := open(t, t.TempDir())
	for _, content := range [][]byte{nil, []byte("read only")} {
		d := put(t, s, content)
		fi, err := os.Stat(s.Path(d))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != 0o444 {
			t.Errorf("mode of %s: got %v, want -r--r--r--", d, got)
		}
	}
}

func TestNeverOverwritten(t *testing.T) {
	s := open(t, t.TempDir())
	content := []byte("original")
	d := put(t, s, content)
	path := s.Path(d)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the stored file in place: a commit of the real bytes must
	// still not replace it, since readers may hold it open.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := blob.Put(t.Context(), s, content); err != nil {
		t.Fatalf("Put of existing content: %v", err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Errorf("%s was replaced by another file", path)
	}
	if got, _ := os.ReadFile(path); string(got) != "tampered" {
		t.Errorf("%s was rewritten: it holds %q", path, got)
	}
}

func TestWalkIgnoresStrayFiles(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	d := put(t, s, []byte("real"))
	other := blob.DigestOf([]byte("misplaced"))
	shard := filepath.Dir(s.Path(d))
	for _, name := range []string{
		"sha256/README",
		"sha256/zz/00/" + string(other),
		"sha256/xyz/" + string(other),
		filepath.Join(shard, "notadigest"),
		filepath.Join(shard, string(d)+".tmp"),
		filepath.Join(shard, string(other)), // valid digest, wrong shard
	} {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte("stray"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A directory named like a blob, in the right shard.
	dirBlob := blob.DigestOf([]byte("a directory"))
	if err := os.MkdirAll(filepath.Join(dir, "sha256", string(dirBlob[:2]), string(dirBlob)), 0o755); err != nil {
		t.Fatal(err)
	}

	var got []blob.Digest
	if err := s.Walk(t.Context(), func(info blob.Info) error {
		got = append(got, info.Digest)
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	if len(got) != 1 || got[0] != d {
		t.Errorf("Walk listed %v, want only %s", got, d)
	}
}

func open(t *testing.T, dir string) *fsblob.Store {
	t.Helper()
	s, err := fsblob.Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func put(t *testing.T, s blob.Store, b []byte) blob.Digest {
	t.Helper()
	info, err := blob.Put(t.Context(), s, b)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return info.Digest
}

func checkNoTemp(t *testing.T, s *fsblob.Store) {
	t.Helper()
	if n, err := s.TempCount(); err != nil || n != 0 {
		t.Errorf("TempCount: %d, %v; want 0", n, err)
	}
}

// TestPutAgain: storing a blob this process already stored skips the write,
// but never hides a blob that has since gone, by Delete or by hand.
func TestPutAgain(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	content := []byte("stored twice")
	d := put(t, s, content)
	before, err := os.Stat(s.Path(d))
	if err != nil {
		t.Fatal(err)
	}
	if got := put(t, s, content); got != d {
		t.Fatalf("second Put: digest %s, want %s", got, d)
	}
	after, err := os.Stat(s.Path(d))
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("second Put replaced the file (%v)", err)
	}

	if err := s.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	put(t, s, content)
	if got, err := os.ReadFile(s.Path(d)); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("Put after Delete: %q, %v", got, err)
	}

	// Removed behind the store's back (an operator, a restore gone wrong).
	if err := os.Remove(s.Path(d)); err != nil {
		t.Fatal(err)
	}
	put(t, s, content)
	if got, err := os.ReadFile(s.Path(d)); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("Put after removal by hand: %q, %v", got, err)
	}
	checkNoTemp(t, s)
}
