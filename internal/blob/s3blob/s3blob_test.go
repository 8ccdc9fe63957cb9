package s3blob_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blob/blobtest"
	"github.com/packyard/packyard/internal/blob/s3blob"
	"github.com/packyard/packyard/internal/testengine"
)

func TestMain(m *testing.M) { testengine.Main(m) }

func TestStore(t *testing.T) {
	for _, prefix := range []string{"", "site/one"} {
		t.Run("Prefix="+strings.ReplaceAll(prefix, "/", ":"), func(t *testing.T) {
			blobtest.Run(t, func(t *testing.T) blob.Store {
				b := testengine.MinIO(t)
				cfg := config(t, b, prefix)
				s := open(t, cfg)
				// Registered before Run's Close, so it runs after it: every
				// case of the suite must leave no temporary file and no
				// incomplete upload.
				t.Cleanup(func() {
					checkNoTemp(t, cfg.TempDir)
					checkNoUploads(t, b)
				})
				return s
			})
		})
	}
}

func TestLayout(t *testing.T) {
	content := []byte("layout")
	d := blob.DigestOf(content)
	for _, tc := range []struct{ name, prefix, key string }{
		{"NoPrefix", "", "sha256/" + string(d[:2]) + "/" + string(d)},
		{"Prefix", "one", "one/sha256/" + string(d[:2]) + "/" + string(d)},
		{"SlashedPrefix", "/one/two/", "one/two/sha256/" + string(d[:2]) + "/" + string(d)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testengine.MinIO(t)
			s := open(t, config(t, b, tc.prefix))
			put(t, s, content)
			if got := objects(t, b); len(got) != 1 || got[tc.key] != string(content) {
				t.Errorf("bucket holds %q, want only %s", got, tc.key)
			}
		})
	}
}

func TestWalkIgnoresForeignKeys(t *testing.T) {
	b := testengine.MinIO(t)
	s := open(t, config(t, b, "site"))
	d := put(t, s, []byte("real"))
	other := blob.DigestOf([]byte("foreign"))
	o, ab := string(other), string(other[:2])
	for _, key := range []string{
		"site/sha256/README",
		"site/sha256/zz/" + o,
		"site/sha256/" + ab + "/x/" + o,
		"site/sha256/" + string(d[:2]) + "/notadigest",
		"site/sha256/" + string(d[:2]) + "/" + string(d) + ".tmp",
		"site/sha256/" + string(d[:2]) + "/" + o, // valid digest, wrong shard
		"site/sha256/" + ab + "/" + strings.ToUpper(o),
		"site/other/" + ab + "/" + o,
		"site2/sha256/" + ab + "/" + o, // a prefix that starts like ours
		"sha256/" + ab + "/" + o,       // no prefix
	} {
		rawPut(t, b, key, []byte("foreign"))
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
	if _, err := s.Stat(t.Context(), other); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Stat of a blob stored only under foreign keys: got %v, want ErrNotFound", err)
	}
}

// config returns the configuration of a store in bucket b under prefix,
// with its own temporary directory.
func config(t *testing.T, b testengine.S3, prefix string) s3blob.Config {
	return s3blob.Config{
		Endpoint:  b.Endpoint,
		Bucket:    b.Bucket,
		Prefix:    prefix,
		AccessKey: b.AccessKey,
		SecretKey: b.SecretKey,
		TempDir:   t.TempDir(),
	}
}

func open(t *testing.T, cfg s3blob.Config) *s3blob.Store {
	t.Helper()
	s, err := s3blob.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func create(t *testing.T, s blob.Store, limit int64) blob.Writer {
	t.Helper()
	w, err := s.Create(t.Context(), limit)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return w
}

func write(t *testing.T, w blob.Writer, b []byte) {
	t.Helper()
	if n, err := w.Write(b); err != nil || n != len(b) {
		t.Fatalf("Write of %d bytes: wrote %d, %v", len(b), n, err)
	}
}

func put(t *testing.T, s blob.Store, b []byte) blob.Digest {
	t.Helper()
	info, err := blob.Put(t.Context(), s, b)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return info.Digest
}

func rawClient(t *testing.T, b testengine.S3) *minio.Client {
	t.Helper()
	c, err := minio.New(strings.TrimPrefix(b.Endpoint, "http://"), &minio.Options{
		Creds: credentials.NewStaticV4(b.AccessKey, b.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rawPut(t *testing.T, b testengine.S3, key string, content []byte) {
	t.Helper()
	if _, err := rawClient(t, b).PutObject(t.Context(), b.Bucket, key, bytes.NewReader(content),
		int64(len(content)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// objects returns the content of every object in the bucket, by key.
func objects(t *testing.T, b testengine.S3) map[string]string {
	t.Helper()
	c := rawClient(t, b)
	got := map[string]string{}
	for oi := range c.ListObjectsIter(t.Context(), b.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if oi.Err != nil {
			t.Fatalf("list: %v", oi.Err)
		}
		o, err := c.GetObject(t.Context(), b.Bucket, oi.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(o)
		o.Close()
		if err != nil {
			t.Fatalf("read %s: %v", oi.Key, err)
		}
		got[oi.Key] = string(content)
	}
	return got
}

func equalObjects(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// checkNoUploads checks that the bucket has no incomplete multipart upload.
func checkNoUploads(t *testing.T, b testengine.S3) {
	t.Helper()
	for u := range rawClient(t, b).ListIncompleteUploads(context.Background(), b.Bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("list incomplete uploads: %v", u.Err)
		}
		t.Errorf("incomplete multipart upload %s of %s left behind", u.UploadID, u.Key)
	}
}

func checkNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("temporary file %s left in %s", e.Name(), dir)
	}
}

func sizeName(n int) string {
	switch {
	case n == 0:
		return "default"
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dB", n)
}

// pseudoRandom returns n bytes that depend only on seed.
func pseudoRandom(seed uint64, n int) []byte {
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b)
	return b
}
