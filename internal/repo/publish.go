package repo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
)

// Paths of a signed repository's public keys.
const (
	KeyASCPath = "key.asc"
	KeyGPGPath = "key.gpg"
)

// publisher publishes one repository. Uploads only record their package
// and ask to be made visible; the publisher folds every change that arrived
// while it was busy into its next generation (group commit).
type publisher struct {
	s      *Service
	repoID int64
	name   string
	format format.Format

	kickc chan struct{}
	warmc chan struct{} // prewarm requests (prewarm.go)
	stopc chan struct{}
	once  sync.Once

	mu        sync.Mutex
	waiters   []waiter
	published int64 // every change up to this sequence is in genNumber
	genNumber int64
	// cfgWanted counts configuration changes; cfgDone is the count the
	// current generation was published with.
	cfgWanted, cfgDone int64

	// Owned by the run goroutine.
	state *pubState
	asm   *assembler
	warm  *warmState
	// phases times the parts of the last build, for the debug log.
	phases struct{ streams, finish, store time.Duration }
	// sigs reuses the signatures of unchanged databases.
	sigs sigCache
}

type waiter struct {
	seq int64
	cfg int64 // configuration count the generation must include
	ch  chan waitResult
}

// watch calls fn (on the publisher's goroutine) once every change up to
// seq is in the current generation; it does not block. A failed publish
// drops the watch.
func (p *publisher) watch(seq int64, fn func()) {
	w := waiter{seq: seq, ch: make(chan waitResult, 1)}
	p.mu.Lock()
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	go func() {
		if r := <-w.ch; r.err == nil {
			fn()
		}
	}()
	p.kick()
}

type waitResult struct {
	gen int64
	err error
}

// pubState is the publisher's in-memory copy of the live packages.
type pubState struct {
	seq     int64                   // changes applied up to here
	byID    map[int64]*format.Entry // live entries
	sorted  []*format.Entry         // by ID: uploads append
	current int64                   // current generation number
}

func newPublisher(s *Service, r *meta.Repo) *publisher {
	p := &publisher{
		s: s, repoID: r.ID, name: r.Name, format: s.formats[r.Format],
		kickc: make(chan struct{}, 1), warmc: make(chan struct{}, 1), stopc: make(chan struct{}),
	}
	p.asm = p.newAssembler()
	return p
}

func (p *publisher) kick() {
	select {
	case p.kickc <- struct{}{}:
	default:
	}
}

func (p *publisher) stop() { p.once.Do(func() { close(p.stopc) }) }

// waitVisible waits until every change up to seq is in the current
// generation and returns that generation's number.
func (p *publisher) waitVisible(ctx context.Context, seq int64) (int64, error) {
	p.mu.Lock()
	if p.genNumber > 0 && p.published >= seq && p.cfgDone >= p.cfgWanted {
		g := p.genNumber
		p.mu.Unlock()
		return g, nil
	}
	return p.await(ctx, waiter{seq: seq, cfg: p.cfgWanted, ch: make(chan waitResult, 1)})
}

// await queues w (p.mu held, and released here), kicks the publisher and
// waits for w's answer.
func (p *publisher) await(ctx context.Context, w waiter) (int64, error) {
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	p.kick()
	select {
	case r := <-w.ch:
		return r.gen, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// republish publishes a new generation even without package changes (the
// repository's configuration changed) and waits for it.
func (p *publisher) republish(ctx context.Context) (int64, error) {
	p.mu.Lock()
	p.cfgWanted++
	return p.await(ctx, waiter{seq: 0, cfg: p.cfgWanted, ch: make(chan waitResult, 1)})
}

func (p *publisher) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			p.fail(ctx.Err())
			return
		case <-p.stopc:
			p.fail(fmt.Errorf("repository %q was deleted", p.name))
			return
		case <-p.warmc:
			if err := p.prewarm(ctx); err != nil && ctx.Err() == nil {
				p.s.log.Debug("prewarm stopped", "repo", p.name, "err", err)
			}
			continue
		case <-p.kickc:
		}
		err := p.publishOnce(ctx)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			p.s.log.Error("publish failed", "repo", p.name, "err", err)
			p.state = nil // reload from the store next time
			p.fail(err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			if backoff < 10*time.Second {
				backoff *= 2
			}
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

// fail answers every waiter with err.
func (p *publisher) fail(err error) {
	p.mu.Lock()
	ws := p.waiters
	p.waiters = nil
	p.mu.Unlock()
	for _, w := range ws {
		w.ch <- waitResult{err: err}
	}
}

// done records a published state and answers the waiters it satisfies.
func (p *publisher) done(seq, gen, cfg int64) {
	p.mu.Lock()
	p.published, p.genNumber, p.cfgDone = seq, gen, cfg
	keep := p.waiters[:0]
	var ready []waiter
	for _, w := range p.waiters {
		if w.seq <= seq && w.cfg <= cfg {
			ready = append(ready, w)
		} else {
			keep = append(keep, w)
		}
	}
	p.waiters = keep
	pending := len(keep) > 0
	p.mu.Unlock()
	for _, w := range ready {
		w.ch <- waitResult{gen: gen}
	}
	if pending {
		p.kick()
	}
}

func (p *publisher) publishOnce(ctx context.Context) error {
	start := time.Now()
	// On a store shared by several nodes, one node publishes a repository
	// at a time; the others wait here, then find the changes they were
	// kicked for already published, or fold them into the next generation.
	if l, ok := p.s.meta.(meta.PublishLocker); ok {
		unlock, err := l.LockPublish(ctx, p.repoID)
		if err != nil {
			return fmt.Errorf("take the publishing lock: %w", err)
		}
		defer unlock()
	}
	p.mu.Lock()
	cfgWanted, cfgDone := p.cfgWanted, p.cfgDone
	p.mu.Unlock()
	upTo, err := p.s.meta.LastSeq(ctx)
	if err != nil {
		return fmt.Errorf("read sequence: %w", err)
	}
	// The configuration is read after the sequence: a change made before
	// cfgWanted was counted is in what is read here.
	r, err := p.s.meta.GetRepo(ctx, p.name)
	if err != nil {
		return fmt.Errorf("load repository: %w", err)
	}
	if r.Kind == meta.KindMirror {
		// A mirror publishes what its last good sync recorded, never the
		// packages of a sync in progress or of one that failed; an exact
		// mirror publishes its upstream's files itself (PublishFiles).
		gate, renders, err := p.s.mirrorGate(ctx, r)
		if err != nil {
			return err
		}
		if !renders {
			p.done(upTo, r.CurrentGeneration, cfgWanted)
			return nil
		}
		upTo = min(upTo, gate)
		if p.state != nil && upTo < p.state.seq {
			upTo = p.state.seq
		}
	}
	changed := cfgWanted > cfgDone
	if p.state == nil {
		if err := p.load(ctx, r, upTo); err != nil {
			return err
		}
		changed = changed || r.CurrentGeneration == 0
		if !changed {
			g, err := p.s.meta.GetGeneration(ctx, p.repoID, r.CurrentGeneration)
			if err != nil {
				return fmt.Errorf("load generation %d: %w", r.CurrentGeneration, err)
			}
			since, err := p.s.meta.PackageChanges(ctx, p.repoID, g.Seq, upTo)
			if err != nil {
				return fmt.Errorf("read changes: %w", err)
			}
			changed = len(since) > 0
			p.s.views.publishedGen(ctx, r, g)
		}
	} else {
		if upTo > p.state.seq {
			changes, err := p.changesSince(ctx, upTo)
			if err != nil {
				return fmt.Errorf("read changes: %w", err)
			}
			p.apply(changes)
			p.state.seq = upTo
			changed = changed || len(changes) > 0
		}
		if r.CurrentGeneration != p.state.current {
			// Another process (a node on the same store) published. The
			// in-memory state depends only on the sequence, so it stays;
			// what is left to do is what that generation does not cover.
			g, err := p.s.meta.GetGeneration(ctx, p.repoID, r.CurrentGeneration)
			if err != nil {
				return fmt.Errorf("load generation %d: %w", r.CurrentGeneration, err)
			}
			p.state.current = r.CurrentGeneration
			p.s.views.publishedGen(ctx, r, g)
			since, err := p.s.meta.PackageChanges(ctx, p.repoID, g.Seq, upTo)
			if err != nil {
				return fmt.Errorf("read changes: %w", err)
			}
			changed = cfgWanted > cfgDone || len(since) > 0
		}
	}
	if !changed {
		p.done(upTo, p.state.current, cfgWanted)
		return nil
	}

	tRead := time.Since(start)
	g, err := p.build(ctx, r, upTo)
	if err != nil {
		return err
	}
	tCommit := time.Now()
	if _, err := p.s.meta.Publish(ctx, g, p.state.current); err != nil {
		if errors.Is(err, meta.ErrStale) {
			// Another process published first (without a publishing
			// lock, or after losing it with its connection): try again
			// on top of its generation.
			p.kick()
			return nil
		}
		return fmt.Errorf("publish generation: %w", err)
	}
	commitDone := time.Now()
	p.state.current = g.Number
	p.s.feed.bump()
	if r, err := p.s.meta.GetRepo(ctx, p.name); err == nil {
		p.s.views.publishedGen(ctx, r, g)
	}
	p.asm.sweep()
	p.asm.forget(p.state.sorted)
	d := time.Since(start)
	p.s.opts.Metrics.Published(p.name, g.Number, d)
	p.s.log.Debug("published", "repo", p.name, "generation", g.Number, "packages", len(p.state.sorted), "seq", upTo,
		"chunks_encoded", p.asm.encoded, "chunks_prewarmed", p.asm.taken, "bytes_hashed", p.asm.hashed, "took", d,
		"read", tRead, "streams", p.phases.streams, "finish", p.phases.finish, "store", p.phases.store,
		"commit", commitDone.Sub(tCommit))
	p.done(upTo, g.Number, cfgWanted)
	return nil
}

func (p *publisher) newAssembler() *assembler {
	return newAssembler(p.s.blobs, func(ctx context.Context, ids []int64) (map[int64]map[string][]byte, error) {
		return p.s.meta.Fragments(ctx, p.repoID, ids)
	})
}

// load reads every live package of the repository into memory.
func (p *publisher) load(ctx context.Context, r *meta.Repo, upTo int64) error {
	st := &pubState{seq: upTo, byID: map[int64]*format.Entry{}, current: r.CurrentGeneration}
	err := p.s.meta.LivePackages(ctx, p.repoID, upTo, func(pk *meta.Package) error {
		e := entryOf(pk)
		e.Fragments = nil // loaded again, chunk by chunk, when needed
		st.byID[pk.ID] = e
		return nil
	})
	if err != nil {
		return fmt.Errorf("load packages: %w", err)
	}
	st.sorted = make([]*format.Entry, 0, len(st.byID))
	for _, e := range st.byID {
		st.sorted = append(st.sorted, e)
	}
	sort.Slice(st.sorted, func(i, j int) bool { return entryLess(st.sorted[i], st.sorted[j]) })
	p.state = st
	p.asm = p.newAssembler()
	p.warm = nil
	return nil
}

func entryOf(pk *meta.Package) *format.Entry {
	id := format.Identity{Name: pk.Name, Epoch: pk.Epoch, Version: pk.Version, Release: pk.Release, Arch: pk.Arch}
	return &format.Entry{ID: pk.ID, Scope: pk.Scope, Arch: pk.Arch, Path: pk.Path, Identity: id, Fragments: pk.Fragments}
}

func entryLess(a, b *format.Entry) bool { return a.ID < b.ID }

// apply folds package changes into the in-memory state.
func (p *publisher) apply(changes []meta.PackageChange) {
	st := p.state
	for i := range changes {
		c := &changes[i]
		if old, ok := st.byID[c.Package.ID]; ok {
			delete(st.byID, old.ID)
			st.remove(old)
		}
		if !c.Removed {
			e := entryOf(&c.Package)
			st.byID[e.ID] = e
			st.insert(e)
		}
	}
}

func (st *pubState) search(e *format.Entry) int {
	return sort.Search(len(st.sorted), func(i int) bool { return !entryLess(st.sorted[i], e) })
}

func (st *pubState) insert(e *format.Entry) {
	i := st.search(e)
	st.sorted = append(st.sorted, nil)
	copy(st.sorted[i+1:], st.sorted[i:])
	st.sorted[i] = e
}

func (st *pubState) remove(e *format.Entry) {
	i := st.search(e)
	if i < len(st.sorted) && st.sorted[i] == e {
		st.sorted = append(st.sorted[:i], st.sorted[i+1:]...)
	}
}

// build assembles a new generation from the in-memory state.
func (p *publisher) build(ctx context.Context, r *meta.Repo, upTo int64) (*meta.Generation, error) {
	st, err := parseSettings(r.Config)
	if err != nil {
		return nil, err
	}
	signer, asc, bin, err := p.s.signing(st)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	now := p.s.opts.Now().UTC()
	keepSigs := func() {}
	if signer != nil {
		signer, keepSigs = p.sigs.wrap(signer, asc, now)
	}
	opts := format.PublishOptions{
		RepoName: p.name, Time: now, Revision: now.Unix(),
		Signer: signer, PublicKey: asc, Settings: st.format(),
	}
	a := p.asm
	a.encoded, a.hashed, a.taken = 0, 0, 0
	a.begin(ctx)
	defer a.wait() // after an early return; a no-op after the wait below
	t0 := time.Now()
	streams := p.format.Streams(p.state.sorted, opts)
	built := make([]format.Built, len(streams))
	// Streams are independent: build them at once, so their chunk writes
	// and fsyncs overlap.
	g, gctx := errgroup.WithContext(ctx)
	for i, st := range streams {
		g.Go(func() error {
			sel := p.state.sorted
			if st.Match != nil {
				sel = nil
				for _, e := range p.state.sorted {
					if st.Match(e) {
						sel = append(sel, e)
					}
				}
			}
			b, err := a.build(gctx, st, sel)
			built[i] = b
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	p.phases.streams = time.Since(t0)
	t0 = time.Now()
	files, err := p.format.Finish(built, opts)
	if err != nil {
		return nil, fmt.Errorf("finish index: %w", err)
	}
	keepSigs()
	if signer != nil {
		// Every repository serves its public keys, armored and in the
		// binary form APT's signed-by takes.
		files = append(files,
			format.File{Path: KeyASCPath, ContentType: "application/pgp-keys", Data: asc},
			format.File{Path: KeyGPGPath, ContentType: "application/pgp-keys", Data: bin})
	}
	parts := map[string][]string{}
	for _, b := range built {
		for _, e := range b.Encoded {
			parts[e.SHA256] = e.Parts
		}
	}
	p.phases.finish = time.Since(t0)
	t0 = time.Now()
	defer func() { p.phases.store = time.Since(t0) }()
	gen := &meta.Generation{RepoID: p.repoID, Seq: upTo, Files: make([]meta.GenFile, len(files))}
	// The files made whole here (signatures, Release, repomd.xml, keys)
	// are stored beside the chunks still being stored, so that all their
	// fsyncs overlap; the generation is complete once they all are.
	for i, f := range files {
		gf := &gen.Files[i]
		*gf = meta.GenFile{Path: f.Path, ContentType: f.ContentType, Digest: f.SHA256, Size: f.Size}
		if f.Data == nil {
			gf.Parts = parts[f.SHA256]
			if len(gf.Parts) == 0 {
				return nil, fmt.Errorf("finish index: %s names %s, which this publish did not assemble", f.Path, f.SHA256)
			}
			continue
		}
		d, err := a.put(ctx, f.Data)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", f.Path, err)
		}
		gf.Digest, gf.Size = d, int64(len(f.Data))
	}
	if err := a.wait(); err != nil {
		return nil, fmt.Errorf("store index files: %w", err)
	}
	return gen, nil
}
