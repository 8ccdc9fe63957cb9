package repo

import (
	"context"
	"fmt"
	"sort"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
)

// Prewarming. While a mirror syncs, the packages it records are held back
// from its generations (the gate of mirrorGate), and the publish that
// follows a good sync would compress every new chunk of every index at
// once, after the last download. Instead, the sync asks its publisher to
// prewarm after each batch it records: the publisher reads the changes
// past its state (not gated: nothing of them is published here), cuts
// the indexes into chunks as the publish will, and compresses the chunks
// that later packages cannot change, every chunk of a stream but its last
// one, into memory. The publish takes a chunk from there instead of
// compressing it, and the changes read instead of reading them again.
//
// A chunk's key names its content (fragment kind, encoding and entry IDs;
// fragments never change), so a prewarmed chunk is the chunk the publish
// would compress, or is not used. Nothing reaches the blob store before
// the publish stores it, so a sync that fails leaves only memory, bounded
// by maxWarmBytes and dropped by the next publish.

// maxWarmBytes bounds the compressed chunks a publisher holds for its
// next publish; maxWarmFragments the fragments of the changes it keeps
// between prewarms.
const (
	maxWarmBytes     = 16 << 20
	maxWarmFragments = 8 << 20
)

// warmState is what prewarming read of changes past the publisher's state.
type warmState struct {
	base    int64 // the state's seq the changes start after
	seq     int64 // changes up to here are in changes
	changes []meta.PackageChange
	// fragBytes counts the fragment bytes changes holds.
	fragBytes int64
}

// warmChunk is a compressed chunk waiting for the publish.
type warmChunk struct {
	data []byte
	rec  xzRecord
}

// WarmMirror asks r's publisher to prewarm its next publish (see above),
// without waiting; a request while one runs is folded into the next.
func (s *Service) WarmMirror(r *meta.Repo) {
	p := s.publisher(r)
	select {
	case p.warmc <- struct{}{}:
	default:
	}
}

// prewarm runs on the publisher's goroutine. It gives up, leaving what it
// did for the publish, as soon as a publish is wanted. Errors only end
// it: the publish does the work itself.
func (p *publisher) prewarm(ctx context.Context) error {
	if p.state == nil {
		return nil // the next publish loads the state
	}
	r, err := p.s.meta.GetRepo(ctx, p.name)
	if err != nil {
		return err
	}
	if r.Kind != meta.KindMirror {
		return nil
	}
	if _, renders, err := p.s.mirrorGate(ctx, r); err != nil || !renders {
		return err
	}
	st, err := parseSettings(r.Config)
	if err != nil {
		return err
	}
	last, err := p.s.meta.LastSeq(ctx)
	if err != nil {
		return err
	}
	w := p.warm
	if w == nil || w.base != p.state.seq {
		w = &warmState{base: p.state.seq, seq: p.state.seq}
	}
	if last > w.seq {
		changes, err := p.s.meta.PackageChanges(ctx, p.repoID, w.seq, last)
		if err != nil {
			return err
		}
		for i := range changes {
			w.fragBytes += fragmentBytes(changes[i].Package.Fragments)
		}
		w.changes = append(w.changes, changes...)
		w.seq = last
	}
	p.warm = w
	// Past the bound, the changes' fragments are dropped once the chunks
	// are compressed: the publish reads them again, and a chunk closed
	// later reads the few it needs.
	defer func() {
		if w.fragBytes > maxWarmFragments {
			for i := range w.changes {
				w.changes[i].Package.Fragments = nil
			}
			w.fragBytes = 0
		}
	}()
	sorted := p.tentative(w.changes)
	opts := format.PublishOptions{RepoName: p.name, Settings: st.format()}
	for _, stream := range p.format.Streams(sorted, opts) {
		sel := sorted
		if stream.Match != nil {
			sel = nil
			for _, e := range sorted {
				if stream.Match(e) {
					sel = append(sel, e)
				}
			}
		}
		chunks := chunkEntries(sel)
		for i := 0; i+1 < len(chunks); i++ {
			key := chunkKey(stream.Fragment, chunks[i])
			for _, enc := range stream.Encodings {
				if enc == format.Raw {
					continue // assembling it is a copy
				}
				if len(p.kickc) > 0 || ctx.Err() != nil {
					return ctx.Err() // a publish is wanted: it goes first
				}
				if err := p.asm.warm(ctx, stream.Fragment, enc, key, chunks[i]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func fragmentBytes(f map[string][]byte) int64 {
	var n int64
	for _, b := range f {
		n += int64(len(b))
	}
	return n
}

// tentative returns the publisher's entries with changes applied, in ID
// order, leaving the state as it is.
func (p *publisher) tentative(changes []meta.PackageChange) []*format.Entry {
	last := make(map[int64]*meta.PackageChange, len(changes))
	for i := range changes {
		last[changes[i].Package.ID] = &changes[i]
	}
	out := make([]*format.Entry, 0, len(p.state.sorted)+len(last))
	for _, e := range p.state.sorted {
		if _, ok := last[e.ID]; !ok {
			out = append(out, e)
		}
	}
	for _, c := range last {
		if !c.Removed {
			out = append(out, entryOf(&c.Package))
		}
	}
	sort.Slice(out, func(i, j int) bool { return entryLess(out[i], out[j]) })
	return out
}

// changesSince returns the changes in (state.seq, upTo]: those prewarming
// read already, and the rest from the store. The prewarm state is used
// once.
func (p *publisher) changesSince(ctx context.Context, upTo int64) ([]meta.PackageChange, error) {
	from := p.state.seq
	var pre []meta.PackageChange
	if w := p.warm; w != nil && w.base == from && w.seq <= upTo {
		pre, from = w.changes, w.seq
	}
	p.warm = nil
	if from == upTo {
		return pre, nil
	}
	rest, err := p.s.meta.PackageChanges(ctx, p.repoID, from, upTo)
	if err != nil {
		return nil, err
	}
	return append(pre, rest...), nil
}

// warm compresses one chunk into memory for the next publish, unless the
// store has it already, it is warm already, or the bound is reached.
func (a *assembler) warm(ctx context.Context, kind string, enc format.Encoding, key string, entries []*format.Entry) error {
	ck := encName(enc) + "\x00" + key
	a.mu.Lock()
	_, stored := a.chunks[ck]
	_, warm := a.warmed[ck]
	full := a.warmBytes >= maxWarmBytes
	a.mu.Unlock()
	if stored || warm || full {
		return nil
	}
	var c warmChunk
	var err error
	c.data, c.rec, err = a.encodeChunk(ctx, kind, enc, entries)
	// Fragments read for this chunk are not kept: the publish reads what
	// it needs, and prewarming a long sync would otherwise gather the
	// whole repository's.
	a.mu.Lock()
	for _, e := range entries {
		if e.Fragments == nil {
			delete(a.loaded, e.ID)
		}
	}
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("prewarm a chunk: %w", err)
	}
	a.mu.Lock()
	a.warmed[ck] = c
	a.warmBytes += int64(len(c.data))
	a.mu.Unlock()
	return nil
}

// takeWarm returns and forgets a prewarmed chunk.
func (a *assembler) takeWarm(ck string) (warmChunk, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.warmed[ck]
	if ok {
		delete(a.warmed, ck)
		a.warmBytes -= int64(len(c.data))
	}
	return c, ok
}
