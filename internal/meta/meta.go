// Package meta defines packyard's domain records (repositories, packages,
// generations, events, tokens, edges, proxy cache records, mirror sync
// records, snapshots) and the Store interface that persists them.
//
// Every method that changes state is atomic: it either commits completely,
// including the change-feed event it appends, or leaves nothing behind.
// Sequence numbers come from the change feed and are strictly increasing
// across the whole installation.
package meta

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every Store implementation.
var (
	// ErrNotFound means the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a record with that unique name or identity exists.
	ErrExists = errors.New("already exists")
	// ErrStale means an optimistic check failed: the repository's current
	// generation moved since the caller read it.
	ErrStale = errors.New("stale generation")
	// ErrUnavailable means the store could not reach its database (refused
	// or lost connection, server shutting down): the call may succeed when
	// retried later. A write that fails with it may or may not have
	// committed.
	ErrUnavailable = errors.New("metadata database unavailable")
)

// Repository formats.
const (
	FormatRPM  = "rpm"
	FormatDeb  = "deb"
	FormatArch = "arch"
	FormatIPS  = "ips"
)

// Repository kinds.
const (
	KindHosted = "hosted"
	KindMirror = "mirror"
	KindProxy  = "proxy"
)

// Repo is a repository.
type Repo struct {
	// ID is assigned by the store and never reused, not even after the
	// repository is deleted (package IDs neither).
	ID     int64
	Name   string
	Format string
	Kind   string
	// Config holds the kind- and format-specific settings as JSON
	// (upstreams, distributions, watch_dir, …); the store does not
	// interpret it.
	Config []byte
	// CurrentGeneration is the number of the published generation, 0 if
	// none has been published.
	CurrentGeneration int64
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Identity is what makes a package unique within a repository. Scope holds
// the format's namespace within a repository ("" for rpm and arch,
// "distribution/component" for deb).
type Identity struct {
	Scope   string
	Name    string
	Epoch   string
	Version string
	Release string
	Arch    string
}

// Package is one package file in a repository.
type Package struct {
	ID     int64
	RepoID int64
	Identity
	// Path is where the file is served, relative to the repository root
	// (e.g. "Packages/f/foo-1.0-1.x86_64.rpm" or "pool/main/f/foo/foo_1.0_amd64.deb").
	// Unique among a repository's live packages.
	Path string
	// Digest is the blob digest (hex sha256) and Size its length.
	Digest string
	Size   int64
	// Summary is a one-line description for listings and search.
	Summary    string
	UploadedBy string
	UploadedAt time.Time
	// Fragments are the pre-rendered index entries keyed by index kind
	// (e.g. "primary", "filelists", "other"); rendered once at ingest.
	Fragments map[string][]byte
	// AddedSeq is the event sequence that added the package; RemovedSeq the
	// one that removed it (0 while the package is live).
	AddedSeq   int64
	RemovedSeq int64
}

// GenFile is one file of a generation. Digest and Size describe the whole
// file. A file assembled from chunks is stored as the concatenation of the
// blobs listed in Parts (hex digests, in order), so that a publish writes
// only the chunks that changed; when Parts is empty the file is the single
// blob named by Digest.
type GenFile struct {
	Path        string
	Digest      string
	Size        int64
	ContentType string
	Parts       []string
}

// Generation is one complete, immutable published view of a repository.
// Its package files are not listed: they are the packages visible at Seq
// (added at or before Seq and not removed at or before Seq), so a publish
// writes rows in proportion to the index files, not to the repository.
type Generation struct {
	RepoID int64
	// Number counts a repository's generations from 1.
	Number int64
	// Seq is the event sequence the generation includes all changes up to.
	Seq       int64
	CreatedAt time.Time
	// Files are the generation's index files (everything but packages).
	Files []GenFile
}

// Event types.
const (
	EventRepoCreated      = "repo.created"
	EventRepoUpdated      = "repo.updated"
	EventRepoDeleted      = "repo.deleted"
	EventPackageAdded     = "package.added"
	EventPackageRemoved   = "package.removed"
	EventGenerationPublic = "generation.published"
)

// Event is one entry of the change feed.
type Event struct {
	Seq  int64
	Type string
	Repo string
	// Data is a JSON document describing the change: a RepoEventData,
	// PackageEventData or GenerationEventData depending on Type.
	Data []byte
	Time time.Time
}

// RepoEventData is the Data of repo.created, repo.updated and repo.deleted
// events.
type RepoEventData struct {
	ID     int64  `json:"id"`
	Format string `json:"format"`
	Kind   string `json:"kind"`
}

// PackageEventData is the Data of package.added and package.removed events.
type PackageEventData struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// GenerationEventData is the Data of generation.published events.
type GenerationEventData struct {
	Number int64 `json:"number"`
	Seq    int64 `json:"seq"`
}

// Token scopes, each including the ones before it.
const (
	ScopeRead = "read"
	// ScopeEdge is an edge agent's: it reads everything and reports its
	// position, but writes no package.
	ScopeEdge  = "edge"
	ScopeWrite = "write"
	ScopeAdmin = "admin"
)

// Token is an API credential. Only a hash of the secret is stored.
type Token struct {
	ID   int64
	Name string
	// Hash is the hex SHA-256 of the secret; unique.
	Hash  string
	Scope string
	// Repos limits the token to these repositories; empty means all.
	Repos     []string
	CreatedAt time.Time
	// LastUsed is zero if the token was never used.
	LastUsed time.Time
}

// PackageQuery filters ListPackages.
type PackageQuery struct {
	// Text matches a substring of the package name (case-insensitive).
	Text string
	// AfterID returns packages with ID > AfterID (keyset pagination).
	AfterID int64
	// Limit bounds the result (0: no limit).
	Limit int
}

// PackageChange is a package added or removed after some sequence number.
type PackageChange struct {
	Package Package
	// Removed is true when the change removed the package.
	Removed bool
}

// Store persists packyard's metadata.
//
// Events become visible in sequence order: a reader that sees the event
// with sequence N also sees every event below N and the changes they record.
type Store interface {
	// CreateRepo inserts r (ID, timestamps set on return) and appends a
	// repo.created event. ErrExists if the name is taken.
	CreateRepo(ctx context.Context, r *Repo) error
	// GetRepo returns the repository by name, or ErrNotFound.
	GetRepo(ctx context.Context, name string) (*Repo, error)
	// ListRepos returns all repositories ordered by name.
	ListRepos(ctx context.Context) ([]Repo, error)
	// UpdateRepoConfig replaces a repository's Config and appends a
	// repo.updated event.
	UpdateRepoConfig(ctx context.Context, name string, config []byte) error
	// DeleteRepo removes the repository with its packages, generations,
	// sync records and snapshots and appends a repo.deleted event. The
	// blobs stay for GC.
	DeleteRepo(ctx context.Context, name string) error

	// AddPackage inserts p (ID, AddedSeq set on return) with its fragments
	// and appends a package.added event. If a live package with the same
	// Identity exists, or one at the same Path with a different Digest, it
	// returns that package and ErrExists. Live packages of different
	// identities may share a path when their digests are equal (one APT
	// pool file in several distributions).
	AddPackage(ctx context.Context, p *Package) (*Package, error)
	// FindPackage returns the live package with that identity, or ErrNotFound.
	FindPackage(ctx context.Context, repoID int64, id Identity) (*Package, error)
	// GetPackage returns a live package by ID, without fragments.
	GetPackage(ctx context.Context, repoID, id int64) (*Package, error)
	// ListPackages returns live packages by ascending ID, without fragments.
	ListPackages(ctx context.Context, repoID int64, q PackageQuery) ([]Package, error)
	// RemovePackage marks a live package removed, appends a package.removed
	// event and returns the event's sequence number.
	RemovePackage(ctx context.Context, repoID, id int64) (int64, error)
	// PackageChanges returns, in sequence order, every package of the
	// repository added or removed after seq, up to and including upTo, with
	// fragments for added ones. A package added and removed in that range
	// is reported once, as removed.
	PackageChanges(ctx context.Context, repoID, seq, upTo int64) ([]PackageChange, error)
	// PackageByPath returns the package served at path in some generation
	// whose Seq is in [from, to]: added at or before to and not removed at
	// or before from (the newest such package if several). Fragments are
	// not loaded. ErrNotFound if none. from == to asks about one generation.
	PackageByPath(ctx context.Context, repoID int64, path string, from, to int64) (*Package, error)
	// GenerationFile returns the file at path in the newest retained
	// generation that has one, with that generation's number, or
	// ErrNotFound.
	GenerationFile(ctx context.Context, repoID int64, path string) (*GenFile, int64, error)
	// LivePackages calls fn for every package of the repository that was
	// live at upTo (added at or before upTo and not removed at or before
	// upTo), with fragments, in ascending ID order, so that it agrees with
	// PackageChanges over the same range. It stops at and returns fn's
	// first error.
	LivePackages(ctx context.Context, repoID, upTo int64, fn func(*Package) error) error
	// Fragments returns the fragments of the given packages of a repository
	// (live or removed), keyed by package ID; unknown IDs are left out.
	Fragments(ctx context.Context, repoID int64, ids []int64) (map[int64]map[string][]byte, error)
	// DigestReferenced reports whether any package (live or removed),
	// retained generation (as a file or a part) or proxy cache record
	// names the blob digest.
	DigestReferenced(ctx context.Context, digest string) (bool, error)
	// WalkReferences calls fn for every blob digest that DigestReferenced
	// would report, possibly more than once each, and stops at fn's first
	// error.
	WalkReferences(ctx context.Context, fn func(digest string) error) error

	// Publish stores g as the repository's next generation and makes it
	// current, atomically, if the current generation is still prev
	// (ErrStale otherwise). It sets g.Number and g.CreatedAt, appends a
	// generation.published event and returns its sequence number.
	Publish(ctx context.Context, g *Generation, prev int64) (int64, error)
	// GetGeneration returns a generation with its files, or ErrNotFound.
	GetGeneration(ctx context.Context, repoID, number int64) (*Generation, error)
	// ListGenerations returns a repository's retained generations, newest
	// first, without files.
	ListGenerations(ctx context.Context, repoID int64) ([]Generation, error)
	// PruneGenerations deletes generations that are older than before,
	// except the newest keep ones, the current one and those a snapshot
	// names. It returns the numbers it deleted.
	PruneGenerations(ctx context.Context, repoID int64, before time.Time, keep int) ([]int64, error)

	// Events returns up to limit events with Seq > since, in order.
	Events(ctx context.Context, since int64, limit int) ([]Event, error)
	// LastSeq returns the highest event sequence number (0 if none).
	LastSeq(ctx context.Context) (int64, error)

	// CreateToken inserts t (ID and CreatedAt set on return). ErrExists if
	// the name or hash is taken.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash returns the token with that hash, or ErrNotFound.
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	// ListTokens returns all tokens ordered by ID.
	ListTokens(ctx context.Context) ([]Token, error)
	// DeleteToken removes a token by name, or returns ErrNotFound.
	DeleteToken(ctx context.Context, name string) error
	// TouchToken records that a token was used at t.
	TouchToken(ctx context.Context, id int64, t time.Time) error

	// EdgeStore keeps the edge agents' reported positions.
	EdgeStore

	// Proxy cache records (proxy repositories): see ProxyFile.
	ProxyStore

	// Mirror sync records (mirror repositories): see MirrorSync.
	MirrorStore

	// Named, retained generations: see Snapshot.
	SnapshotStore

	// Close releases the store.
	Close() error
}

// ProxyFile records one file that a proxy repository holds in its cache:
// the blob served at Path, and what the upstream said about it. Proxy
// files are local cache state, not part of the change feed.
type ProxyFile struct {
	RepoID int64
	// Path is relative to the repository root, as clients request it.
	Path string
	// Digest is the blob (hex sha256) and Size its length.
	Digest      string
	Size        int64
	ContentType string
	// ETag and LastModified are the upstream's validators, sent back in a
	// conditional GET when a pointer file is revalidated ("" if none).
	ETag         string
	LastModified string
	// Source is the upstream or peer URL the file came from.
	Source string
	// FetchedAt is when the file was last fetched or revalidated.
	FetchedAt time.Time
	// UsedAt is when a client last received the file (for LRU eviction);
	// TouchProxyFile moves it.
	UsedAt time.Time
	// Fragments is the digest of a blob holding a cached package's
	// rendered index entries (union proxies), "" for none; GC keeps it.
	Fragments string
}

// ProxyStore persists proxy repositories' cache records.
type ProxyStore interface {
	// PutProxyFiles records files of a repository's cache, replacing any
	// record at the same path, in one transaction: a pointer file and the
	// index files it names become visible together. ErrNotFound if the
	// repository does not exist.
	PutProxyFiles(ctx context.Context, repoID int64, files []ProxyFile) error
	// GetProxyFile returns the record at path, or ErrNotFound.
	GetProxyFile(ctx context.Context, repoID int64, path string) (*ProxyFile, error)
	// TouchProxyFile sets a record's FetchedAt (when not zero: revalidated
	// upstream) and UsedAt (when not zero: served). ErrNotFound if none.
	TouchProxyFile(ctx context.Context, repoID int64, path string, fetched, used time.Time) error
	// ListProxyFiles calls fn for every record of a repository, by path,
	// and stops at fn's first error.
	ListProxyFiles(ctx context.Context, repoID int64, fn func(*ProxyFile) error) error
	// DeleteProxyFile removes a record, or returns ErrNotFound. The blob
	// stays for GC, which keeps blobs that any record names.
	DeleteProxyFile(ctx context.Context, repoID int64, path string) error
}

// Sync statuses.
const (
	SyncRunning = "running"
	SyncOK      = "ok"
	SyncFailed  = "failed"
)

// MirrorSync is the record of one sync of a mirror repository from its
// upstreams. Sync records are local state, not part of the change feed.
type MirrorSync struct {
	// ID is assigned by the store and never reused.
	ID        int64
	RepoID    int64
	StartedAt time.Time
	// FinishedAt is zero while the sync runs.
	FinishedAt time.Time
	// Status is SyncRunning, SyncOK or SyncFailed.
	Status string
	// Error says why the sync failed; "" unless Status is SyncFailed.
	Error string
	// Seq is, for an ok sync, the event sequence that the generation it
	// published includes, and Generation that generation's number.
	Seq        int64
	Generation int64
	// Stats is a JSON document of counters (added, kept, failed, bytes,
	// …); the store does not interpret it.
	Stats []byte
}

// MirrorStore persists mirror sync records.
type MirrorStore interface {
	// PutSync inserts s when s.ID == 0 (setting s.ID) or replaces the
	// record with that ID. ErrNotFound if the repository does not exist,
	// or, on update, if the repository has no record with that ID. A
	// Status other than SyncRunning, SyncOK or SyncFailed is refused.
	PutSync(ctx context.Context, s *MirrorSync) error
	// ListSyncs returns up to limit (0: all) of a repository's sync
	// records, newest (highest ID) first.
	ListSyncs(ctx context.Context, repoID int64, limit int) ([]MirrorSync, error)
	// LastGoodSync returns the repository's newest (highest ID) record
	// with Status SyncOK, or ErrNotFound.
	LastGoodSync(ctx context.Context, repoID int64) (*MirrorSync, error)
	// PruneSyncs deletes a repository's sync records but the newest keep
	// (keep ≥ 1), never a running one nor the newest ok one (the
	// publisher of a mirror publishes up to its Seq), and returns how
	// many it deleted.
	PruneSyncs(ctx context.Context, repoID int64, keep int) (int, error)
}

// Snapshot freezes one generation of a repository under a name. Snapshots
// are not part of the change feed.
type Snapshot struct {
	RepoID int64
	// Name is unique within the repository.
	Name       string
	Generation int64
	CreatedAt  time.Time
}

// SnapshotStore persists snapshots. A generation that a snapshot names is
// never pruned (PruneGenerations skips it) until the snapshot is deleted;
// its files, and the packages live at its Seq, therefore stay referenced.
type SnapshotStore interface {
	// CreateSnapshot inserts s (CreatedAt set on return). ErrExists if the
	// repository has a snapshot of that name; ErrNotFound if the
	// repository or the generation (retained) does not exist.
	CreateSnapshot(ctx context.Context, s *Snapshot) error
	// GetSnapshot returns a repository's snapshot by name, or ErrNotFound.
	GetSnapshot(ctx context.Context, repoID int64, name string) (*Snapshot, error)
	// ListSnapshots returns a repository's snapshots ordered by name.
	ListSnapshots(ctx context.Context, repoID int64) ([]Snapshot, error)
	// DeleteSnapshot removes a snapshot, or returns ErrNotFound. Its
	// generation becomes prunable again under the normal rules.
	DeleteSnapshot(ctx context.Context, repoID int64, name string) error
}

// Edge is what an edge agent (packyard agent) last reported to the origin.
// Edges are not part of the change feed.
type Edge struct {
	// Name is the edge's identity (its token's name); unique.
	Name    string
	Version string
	// Repos maps each followed repository to the generation the edge
	// serves (0: none yet).
	Repos map[string]int64
	// LastSync is when the edge last finished a sync; zero if never.
	LastSync time.Time
	// LastSeen is when the origin received the report.
	LastSeen time.Time
	// Address is where the report came from (the client address).
	Address string
	// LastError is the edge's last sync error, "" when it is healthy.
	LastError string
}

// EdgeStore persists edge reports.
type EdgeStore interface {
	// PutEdge creates or replaces the record of the edge named e.Name.
	PutEdge(ctx context.Context, e *Edge) error
	// ListEdges returns every edge ordered by name.
	ListEdges(ctx context.Context) ([]Edge, error)
	// DeleteEdge removes an edge's record, or returns ErrNotFound.
	DeleteEdge(ctx context.Context, name string) error
}

// EventWatcher is implemented by stores that several packyard processes,
// possibly on several machines, share (PostgreSQL). It lets a process learn
// promptly of events other processes commit, instead of polling.
type EventWatcher interface {
	// WatchEvents returns a channel that receives a value, soon after any
	// process commits an event (signals may be coalesced), and also after
	// the store has reconnected, since events may have been missed in
	// between: the receiver re-reads the store on every signal. The channel
	// is closed when ctx ends.
	WatchEvents(ctx context.Context) <-chan struct{}
}

// PublishLocker is implemented by stores shared by several machines. Publish
// is already safe without it (it fails with ErrStale when another process
// won); the lock spares the losers the work of building a generation that
// will be thrown away.
type PublishLocker interface {
	// LockPublish blocks until this process holds the publishing lock of the
	// repository, or ctx ends. The returned function releases it. If the
	// connection holding the lock is lost, the lock is lost with it (another
	// process may take it); Publish stays safe because of ErrStale.
	LockPublish(ctx context.Context, repoID int64) (unlock func(), err error)
}

// SyncLocker is implemented by stores shared by several machines: it
// keeps two nodes from syncing the same mirror at once.
type SyncLocker interface {
	// TryLockSync takes the mirror-sync lock of the repository, without
	// waiting: ok is false when another process holds it. The returned
	// function releases it; the lock is also lost with its connection.
	TryLockSync(ctx context.Context, repoID int64) (unlock func(), ok bool, err error)
}

// CopyTables lists, parents first, the tables a TableCopier copies. Both
// backends keep the same tables and columns, holding only integers, text
// and bytes, so that rows move between them unchanged.
var CopyTables = []string{"repos", "packages", "package_fragments", "generations", "generation_files", "events", "tokens", "edges", "proxy_files", "mirror_syncs", "snapshots"}

// CopyKeys is the primary key of each table of CopyTables: ExportRows
// returns rows in this order on every backend.
var CopyKeys = map[string]string{
	"repos":             "id",
	"packages":          "id",
	"package_fragments": "package_id, kind",
	"generations":       "repo_id, number",
	"generation_files":  "repo_id, number, path",
	"events":            "seq",
	"tokens":            "id",
	"proxy_files":       "repo_id, path",
	"edges":             "name",
	"mirror_syncs":      "id",
	"snapshots":         "repo_id, name",
}

// TableCopier is implemented by stores that can be copied row for row into
// another store, IDs and sequence numbers included (packyard migrate).
type TableCopier interface {
	// ExportRows calls fn for every row of table, in primary-key order,
	// with the column names and the values (int64, string, []byte or nil).
	ExportRows(ctx context.Context, table string, fn func(cols []string, row []any) error) error
	// ImportRows inserts rows into table, as they were exported, in one
	// transaction.
	ImportRows(ctx context.Context, table string, cols []string, rows [][]any) error
	// FinishImport makes the store ready for use after an import: its ID
	// and sequence generators continue after the imported values.
	FinishImport(ctx context.Context) error
}
