package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/packyard/packyard/bench/internal/corpus"
	"github.com/packyard/packyard/bench/internal/gen"
	"github.com/packyard/packyard/bench/internal/proc"
	"github.com/packyard/packyard/internal/format/deb/debtest"
	"github.com/packyard/packyard/internal/format/rpm/rpmtest"
	"github.com/packyard/packyard/internal/sign"
)

// The upstreams are a signed RPM repository made with createrepo_c and a
// signed APT repository made with apt-ftparchive, each in two states:
// "initial" (the first N packages of the corpus) and "incremental" (the
// same tree with the next 10 packages added and the metadata made again,
// as the upstream's own tools would on its next publication). Both states
// are built once and kept in the cache directory; a run serves one or the
// other by pointing a symbolic link under nginx's root at it.
//
//	CACHE/
//	  upstream-key.private.asc  the upstream's signing key (RSA 3072, made once)
//	  upstream-key.asc          its public key, armored (packyard, dnf's gpgkey=)
//	  upstream-key.gpg          the same, binary (aptly's and gpgv's -keyring)
//	  rpms-v1/, debs-v1/        the corpus files (package corpus; see corpus.Load)
//	  states-v1-nN-xK-seedS/
//	    STAMP                   written last: the cache version and key fingerprint
//	    initial/rpm/            Packages/*.rpm, repodata/ (repomd.xml signed: repomd.xml.asc)
//	    initial/deb/            pool/main/p/PKG/*.deb, dists/stable/{InRelease,Release,Release.gpg,
//	                            main/binary-amd64/Packages{,.gz,.xz}}
//	    incremental/rpm/, incremental/deb/

const (
	dist      = "stable"
	component = "main"
	debArch   = "amd64"
	// cacheVersion names the generators and the layout of the cache:
	// change it when either changes, so that the next run builds its
	// corpus and trees afresh in new directories (corpus.Load trusts a
	// MANIFEST by file names alone).
	cacheVersion = "v1"
)

// upstreamStates is the built upstream trees and the key that signs them.
type upstreamStates struct {
	dir            string // states-… directory: initial/ and incremental/
	keyArmored     string // upstream-key.asc
	keyBinary      string // upstream-key.gpg
	fingerprint    string
	rpms, debs     []corpus.File // N + extra corpus files, in order
	n, extra       int
	rpmBytesInit   int64
	debBytesInit   int64
	rpmBytesExtra  int64
	debBytesExtra  int64
	buildDurations map[string]time.Duration
}

// payloadSize is the size of the random file added to package i so that
// the corpus has realistic, varied sizes: none for a third of the
// packages (a few KB: the generators' own files), log-uniform between
// 1 KiB and 384 KiB for the rest (the packages are then ~3 KB – ~400 KB,
// ~50 KB on average).
func payloadSize(r *rand.Rand) int {
	if r.IntN(3) == 0 {
		return 0
	}
	return int(math.Exp(math.Log(1<<10) + r.Float64()*(math.Log(384<<10)-math.Log(1<<10))))
}

// payload returns the random payload of package i of a corpus (tag keeps
// the rpm and deb corpora apart), nil for none.
func payload(seed int64, tag uint64, i int) []byte {
	r := rand.New(rand.NewPCG(uint64(seed)^tag, uint64(i)))
	n := payloadSize(r)
	if n == 0 {
		return nil
	}
	var s [32]byte
	for k := range 8 {
		s[k] = byte(uint64(seed) >> (8 * k))
		s[8+k] = byte(uint64(i) >> (8 * k))
		s[16+k] = byte(tag >> (8 * k))
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

const (
	tagRPM = 0x72706d6d6972726f // "rpmmirro"
	tagDeb = 0x6465626d6972726f // "debmirro"
)

// loadRPMs returns the first n RPMs of the corpus (bench/internal/gen's
// packages with a payload file each), building those not in dir yet.
func loadRPMs(cfg *config, dir string, n int) ([]corpus.File, error) {
	names := make([]string, n)
	for i := range n {
		names[i] = gen.FileName(gen.Spec(cfg.seed, i))
	}
	return corpus.Load(dir, names, func(i int) ([]byte, error) {
		s := gen.Spec(cfg.seed, i)
		if p := payload(cfg.seed, tagRPM, i); p != nil {
			s.Files = append(s.Files, rpmtest.File{Path: "/usr/share/" + s.Name + "/data.bin", Body: p, Mode: 0o644})
		}
		return rpmtest.Build(s)
	}, cfg.logf)
}

// loadDebs returns the first n .debs of the corpus: debtest.Corpus with
// every package of architecture amd64 or all (the corpus's arm64 ones are
// made amd64, so that the one architecture mirrored holds them all) and a
// payload file each, building those not in dir yet.
func loadDebs(cfg *config, dir string, n int) ([]corpus.File, error) {
	specs := debtest.Corpus(n, cfg.seed)
	names := make([]string, n)
	for i := range specs {
		s := &specs[i]
		if s.Architecture != "all" {
			s.Architecture = debArch
		}
		if p := payload(cfg.seed, tagDeb, i); p != nil {
			s.Files = append(s.Files, debtest.File{Path: "/usr/share/" + s.Package + "/data.bin", Body: p})
			if s.InstalledSize > 0 {
				s.InstalledSize += (len(p) + 1023) / 1024
			}
		}
		names[i] = debFileName(*s)
	}
	return corpus.Load(dir, names, func(i int) ([]byte, error) { return debtest.Build(specs[i]) }, cfg.logf)
}

// debFileName is the name dpkg-name would give a package.
func debFileName(s debtest.Spec) string {
	v := s.Version
	if i := strings.IndexByte(v, ':'); i >= 0 {
		v = v[i+1:]
	}
	return s.Package + "_" + v + "_" + s.Architecture + ".deb"
}

// debPoolPath is where a .deb lies in the APT tree.
func debPoolPath(name string) string {
	return filepath.Join("pool", component, name[:1], name[:strings.IndexByte(name, '_')], name)
}

// prepareUpstream loads the corpora and the key, and builds the two
// states of both upstreams unless the cache has them already.
func prepareUpstream(cfg *config) (*upstreamStates, error) {
	cache := cfg.cache
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	u := &upstreamStates{n: cfg.n, extra: cfg.extra, buildDurations: map[string]time.Duration{},
		keyArmored: filepath.Join(cache, "upstream-key.asc"), keyBinary: filepath.Join(cache, "upstream-key.gpg")}
	key, err := loadKey(cache, u.keyArmored, u.keyBinary)
	if err != nil {
		return nil, err
	}
	u.fingerprint = key.Fingerprint()
	total := cfg.n + cfg.extra
	t0 := time.Now()
	if u.rpms, err = loadRPMs(cfg, filepath.Join(cache, "rpms-"+cacheVersion), total); err != nil {
		return nil, err
	}
	if u.debs, err = loadDebs(cfg, filepath.Join(cache, "debs-"+cacheVersion), total); err != nil {
		return nil, err
	}
	u.buildDurations["corpus"] = time.Since(t0)
	for i := range total {
		if i < cfg.n {
			u.rpmBytesInit += u.rpms[i].Size
			u.debBytesInit += u.debs[i].Size
		} else {
			u.rpmBytesExtra += u.rpms[i].Size
			u.debBytesExtra += u.debs[i].Size
		}
	}
	u.dir = filepath.Join(cache, fmt.Sprintf("states-%s-n%d-x%d-seed%d", cacheVersion, cfg.n, cfg.extra, cfg.seed))
	stamp := "mirrorbench " + cacheVersion + " " + u.fingerprint + "\n"
	if b, err := os.ReadFile(filepath.Join(u.dir, "STAMP")); err == nil && string(b) == stamp {
		cfg.logf("upstream trees: reusing %s", u.dir)
		return u, nil
	}
	cfg.logf("upstream trees: building %s (createrepo_c, apt-ftparchive; signed by %s)", u.dir, u.fingerprint)
	if err := os.RemoveAll(u.dir); err != nil {
		return nil, err
	}
	signer, err := sign.NewSigner(key)
	if err != nil {
		return nil, err
	}
	for _, st := range []struct {
		name string
		n    int
	}{{"initial", cfg.n}, {"incremental", total}} {
		t := time.Now()
		if err := buildRPMTree(filepath.Join(u.dir, st.name, "rpm"), u.rpms[:st.n], signer, filepath.Join(u.dir, "initial", "rpm")); err != nil {
			return nil, fmt.Errorf("rpm upstream (%s): %w", st.name, err)
		}
		u.buildDurations["rpm "+st.name] = time.Since(t)
		t = time.Now()
		if err := buildDebTree(filepath.Join(u.dir, st.name, "deb"), u.debs[:st.n], signer); err != nil {
			return nil, fmt.Errorf("deb upstream (%s): %w", st.name, err)
		}
		u.buildDurations["deb "+st.name] = time.Since(t)
		cfg.logf("  %s: rpm %s, deb %s", st.name, u.buildDurations["rpm "+st.name].Round(time.Millisecond), u.buildDurations["deb "+st.name].Round(time.Millisecond))
	}
	if err := os.WriteFile(filepath.Join(u.dir, "STAMP"), []byte(stamp), 0o644); err != nil {
		return nil, err
	}
	return u, nil
}

// loadKey reads the upstream's key from the cache, or makes it, and
// writes its public halves.
func loadKey(cache, armored, binary string) (*sign.Key, error) {
	priv := filepath.Join(cache, "upstream-key.private.asc")
	var key *sign.Key
	if b, err := os.ReadFile(priv); err == nil {
		if key, err = sign.ParsePrivate(b, nil); err != nil {
			return nil, fmt.Errorf("%s: %w (remove it to make a new key)", priv, err)
		}
	} else {
		if key, err = sign.Generate("packyard bench upstream", "upstream@example.invalid", sign.RSA3072, time.Now().Add(-time.Hour)); err != nil {
			return nil, err
		}
		b, err := key.ArmoredPrivate()
		if err != nil {
			return nil, err
		}
		if err := writeFile(priv, b); err != nil {
			return nil, err
		}
	}
	pub, err := key.ArmoredPublic()
	if err != nil {
		return nil, err
	}
	bin, err := key.BinaryPublic()
	if err != nil {
		return nil, err
	}
	if err := writeFile(armored, pub); err != nil {
		return nil, err
	}
	return key, writeFile(binary, bin)
}

// buildRPMTree lays files out under root/Packages and makes the metadata
// with createrepo_c (--no-database: no sqlite files, as Fedora's and
// RHEL's repositories are now published); with from (another tree whose
// repodata covers a prefix of files) it copies that repodata and runs
// createrepo_c --update instead, as an upstream publishing new packages
// would. repodata/repomd.xml gets an armored detached signature,
// repomd.xml.asc.
func buildRPMTree(root string, files []corpus.File, signer *sign.Signer, from string) error {
	for _, f := range files {
		if err := linkFile(f.Path, filepath.Join(root, "Packages", f.Name)); err != nil {
			return err
		}
	}
	args := []string{"--quiet", "--no-database"}
	if from != root {
		if err := copyDir(filepath.Join(from, "repodata"), filepath.Join(root, "repodata")); err != nil {
			return err
		}
		args = append(args, "--update")
	}
	if _, err := proc.Output(root, "createrepo_c", append(args, ".")...); err != nil {
		return err
	}
	// The signature of the old repomd.xml must not outlive it.
	_ = os.Remove(filepath.Join(root, "repodata", "repomd.xml.asc"))
	repomd, err := os.ReadFile(filepath.Join(root, "repodata", "repomd.xml"))
	if err != nil {
		return err
	}
	sig, err := signer.DetachArmored(repomd)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(root, "repodata", "repomd.xml.asc"), sig)
}

// buildDebTree lays files out under root/pool/main and makes the index
// with apt-ftparchive: dists/stable/main/binary-amd64/Packages (and .gz,
// .xz), Release, InRelease (clearsigned) and Release.gpg (detached,
// armored).
func buildDebTree(root string, files []corpus.File, signer *sign.Signer) error {
	for _, f := range files {
		if err := linkFile(f.Path, filepath.Join(root, debPoolPath(f.Name))); err != nil {
			return err
		}
	}
	packages, err := proc.Output(root, "apt-ftparchive", "packages", filepath.Join("pool", component))
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "dists", dist, component, "binary-"+debArch)
	var gz, xzb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = zw.Write(packages)
	if err := zw.Close(); err != nil {
		return err
	}
	xw, err := xz.NewWriter(&xzb)
	if err != nil {
		return err
	}
	_, _ = xw.Write(packages)
	if err := xw.Close(); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"Packages": packages, "Packages.gz": gz.Bytes(), "Packages.xz": xzb.Bytes()} {
		if err := writeFile(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	rel, err := proc.Output(root, "apt-ftparchive",
		"-o", "APT::FTPArchive::Release::Origin=bench", "-o", "APT::FTPArchive::Release::Label=bench",
		"-o", "APT::FTPArchive::Release::Description=Synthetic archive of the packyard mirror benchmark",
		"-o", "APT::FTPArchive::Release::Suite="+dist, "-o", "APT::FTPArchive::Release::Codename="+dist,
		"-o", "APT::FTPArchive::Release::Components="+component,
		"-o", "APT::FTPArchive::Release::Architectures="+debArch,
		"release", filepath.Join("dists", dist))
	if err != nil {
		return err
	}
	inRelease, err := signer.ClearSign(rel)
	if err != nil {
		return err
	}
	det, err := signer.DetachArmored(rel)
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"Release": rel, "InRelease": inRelease, "Release.gpg": det} {
		if err := writeFile(filepath.Join(root, "dists", dist, name), b); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// linkFile hard-links src to dst (making dst's directory), or copies it
// where a link cannot be made.
func linkFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil || os.IsExist(err) {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// copyDir copies the regular files of src (not its subdirectories) into
// dst.
func copyDir(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dst, e.Name()), b); err != nil {
			return err
		}
	}
	return nil
}
