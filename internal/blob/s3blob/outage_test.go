package s3blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/testengine"
)

// TestUnavailable stops MinIO and checks that the store fails fast with
// blob.ErrUnavailable, then recovers once MinIO is back without reopening.
func TestUnavailable(t *testing.T) {
	b := testengine.MinIO(t)
	cfg := config(t, b, "p")
	cfg.MemoryBuffer = 1 << 20
	s := open(t, cfg)
	ctx := t.Context()
	content := []byte("stored before the outage")
	d := put(t, s, content)
	w := create(t, s, 0)
	write(t, w, pseudoRandom(5, 2<<20))
	r, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	testengine.MinIOStop(t)
	for _, op := range []struct {
		name string
		fn   func() error
	}{
		{"Commit", func() error { _, err := w.Commit(ctx, ""); return err }},
		{"Open", func() error { _, err := s.Open(ctx, d); return err }},
		{"Read", func() error {
			if _, err := r.Seek(3, io.SeekStart); err != nil {
				return err
			}
			_, err := r.Read(make([]byte, 5))
			return err
		}},
		{"Stat", func() error { _, err := s.Stat(ctx, d); return err }},
		{"Delete", func() error { return s.Delete(ctx, d) }},
		{"Walk", func() error { return s.Walk(ctx, func(blob.Info) error { return nil }) }},
		// Create sends nothing, except while the store is known to be down.
		{"Create", func() error { _, err := s.Create(ctx, 0); return err }},
	} {
		start := time.Now()
		err := op.fn()
		if !errors.Is(err, blob.ErrUnavailable) {
			t.Errorf("%s while MinIO is down: got %v, want ErrUnavailable", op.name, err)
		}
		d := time.Since(start)
		t.Logf("%s failed after %v: %v", op.name, d.Round(time.Millisecond), err)
		if d > 10*time.Second {
			t.Errorf("%s took %v to fail", op.name, d)
		}
	}
	checkNoTemp(t, cfg.TempDir)

	testengine.MinIOStart(t)
	got := make([]byte, 5)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != string(content[3:8]) {
		t.Errorf("Read after the restart: %q, %v; want %q", got, err, content[3:8])
	}
	if got, err := blob.ReadAll(ctx, s, d); err != nil || !bytes.Equal(got, content) {
		t.Errorf("ReadAll after the restart: %q, %v", got, err)
	}
	put(t, s, []byte("stored after the outage"))
}

func TestContextCancelled(t *testing.T) {
	b := testengine.MinIO(t)
	s := open(t, config(t, b, ""))
	d := put(t, s, []byte("stored"))
	w := create(t, s, 0)
	write(t, w, []byte("not committed"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := w.Commit(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit: got %v, want context.Canceled", err)
	}
	if _, err := s.Open(ctx, d); !errors.Is(err, context.Canceled) {
		t.Errorf("Open: got %v, want context.Canceled", err)
	}
	if err := s.Walk(ctx, func(blob.Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Walk: got %v, want context.Canceled", err)
	}

	// A reader's requests run under the context given to Open.
	rctx, rcancel := context.WithCancel(t.Context())
	r, err := s.Open(rctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rcancel()
	if _, err := r.Seek(1, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Read after the Open context ended: got %v, want context.Canceled", err)
	}
}
