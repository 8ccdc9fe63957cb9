package sqlite

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/packyard/packyard/internal/meta"
)

// BenchmarkAddPackages: 2,000 packages added by 128 concurrent callers, as
// a mirror sync records a batch (the group commit folds them).
func BenchmarkAddPackages(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		s := open(b, filepath.Join(b.TempDir(), "meta.db"))
		r := &meta.Repo{Name: "r", Format: meta.FormatDeb, Kind: meta.KindMirror, Config: []byte(`{}`)}
		if err := s.CreateRepo(b.Context(), r); err != nil {
			b.Fatal(err)
		}
		frag := make([]byte, 700)
		b.StartTimer()
		sem := make(chan struct{}, 128)
		var wg sync.WaitGroup
		for i := range 2000 {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				name := fmt.Sprintf("pkg-%05d", i)
				p := &meta.Package{RepoID: r.ID, Identity: meta.Identity{Scope: "stable/main", Name: name, Version: "1.0", Release: "1", Arch: "amd64"},
					Path: "pool/main/p/" + name + "/" + name + "_1.0-1_amd64.deb", Digest: fmt.Sprintf("%064d", i), Size: 4096,
					Summary: "a package", UploadedBy: "mirror", Fragments: map[string][]byte{"Packages": frag}}
				if _, err := s.AddPackage(b.Context(), p); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}
