package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestAgentReusesParts: an index file published in parts is assembled on
// the edge from the parts of the previous file that did not change; only
// the changed parts are asked of the origin, and the tree stays
// byte-identical. A part whose bytes on disk no longer match is
// downloaded instead.
func TestAgentReusesParts(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	// Chunks of the index streams end at package IDs chosen by a hash
	// (internal/repo/assemble.go); the first is ID 89, so 90 packages
	// make files of several parts, the first of which the next upload
	// leaves alone.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range 90 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			o.upload("el", fmt.Sprintf("p%03d", i), "1.0")
		}()
	}
	wg.Wait()
	a := startAgent(t, testConfig(t, o))
	root := a.cfg.RootDir
	waitFor(t, "initial copy", func() (bool, string) { return o.treeMatches(root, "el") })
	a.settled(t)

	multi := map[string][]string{}
	for _, f := range o.files("el").Files {
		if len(f.Parts) > 1 {
			multi[kindOf(f.Path)] = f.Parts
		}
	}
	if len(multi) == 0 {
		t.Fatal("no multi-part file in the generation: nothing to test")
	}

	o.upload("el", "c", "1.0")
	waitFor(t, "second generation", a.caughtUp(o, "el"))
	reused := a.metrics.partsReused
	if n := counterValue(t, reused); n == 0 {
		t.Fatal("no part of a multi-part file was taken from disk")
	}
	unchanged := 0
	for _, f := range o.files("el").Files {
		old, ok := multi[kindOf(f.Path)]
		if !ok || len(f.Parts) < 2 {
			continue
		}
		had := map[string]bool{}
		for _, d := range old {
			had[d] = true
		}
		for _, d := range f.Parts {
			if had[d] {
				unchanged++
				if got := o.requested(d); got != 1 {
					t.Errorf("%s: unchanged part %s asked of the origin %d times, want once (the first copy)", f.Path, d[:12], got)
				}
			}
		}
	}
	if unchanged == 0 {
		t.Fatal("no part stayed the same between the generations: nothing was tested")
	}
	if ok, why := o.treeMatches(root, "el"); !ok {
		t.Fatalf("tree after the reuse: %s", why)
	}

	// Damage every multi-part file on disk: the next generation's parts
	// read back do not match and are downloaded.
	before := counterValue(t, reused)
	for _, f := range o.files("el").Files {
		if len(f.Parts) < 2 {
			continue
		}
		p := filepath.Join(root, "el", filepath.FromSlash(f.Path))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] ^= 0x55
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o.upload("el", "d", "1.0")
	waitFor(t, "third generation", a.caughtUp(o, "el"))
	if got := counterValue(t, reused); got != before {
		t.Errorf("%v parts reused from damaged files", got-before)
	}
	if ok, why := o.treeMatches(root, "el"); !ok {
		t.Fatalf("tree after damaged parts: %s", why)
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// kindOf names an index file without the digest in its name (rpm names
// repodata files by their digest, so the path changes every generation).
func kindOf(p string) string {
	base := filepath.Base(p)
	if i := strings.IndexByte(base, '-'); i == 64 {
		base = base[i+1:]
	}
	return filepath.Join(filepath.Dir(p), base)
}
