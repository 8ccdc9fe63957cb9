package s3blob_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/packyard/packyard/internal/blob/s3blob"
	"github.com/packyard/packyard/internal/testengine"
)

// TestCommitRefreshesOldBlob: a blob stored again after it aged gets a new
// modification time, as fsblob's does, so that garbage collection, which
// spares young blobs, does not delete it just as a new upload names it.
// Its bytes and metadata stay as they were.
func TestCommitRefreshesOldBlob(t *testing.T) {
	b := testengine.MinIO(t)
	s := open(t, config(t, b, "touch"))
	s3blob.SetTouchAfter(s, time.Second)
	content := []byte("left behind by an upload that failed")
	d := put(t, s, content)
	before, err := s.Stat(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	// S3 keeps Last-Modified to the second.
	time.Sleep(2100 * time.Millisecond)
	info, err := s.Put(t.Context(), content)
	if err != nil {
		t.Fatalf("second Put: %v", err)
	}
	after, err := s.Stat(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime.After(before.ModTime) || !info.ModTime.Equal(after.ModTime) {
		t.Errorf("ModTime %v before, %v after storing again (Put said %v): want a newer one", before.ModTime, after.ModTime, info.ModTime)
	}
	if after.Size != int64(len(content)) {
		t.Errorf("size %d after the refresh, want %d", after.Size, len(content))
	}
	rd, err := s.Open(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got, err := io.ReadAll(rd)
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("content after the refresh: %q, %v", got, err)
	}
	oi, err := rawClient(t, b).StatObject(t.Context(), b.Bucket, "touch/sha256/"+string(d[:2])+"/"+string(d), minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if oi.ContentType != "application/octet-stream" {
		t.Errorf("content type %q after the refresh", oi.ContentType)
	}
}
