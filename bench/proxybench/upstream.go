package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/packyard/packyard/bench/internal/nginx"
	"github.com/packyard/packyard/bench/internal/proc"
	"github.com/packyard/packyard/internal/format/deb/debtest"
	"github.com/packyard/packyard/internal/sign"
)

// The upstream is a signed APT repository, as a Debian mirror lays it out,
// built with apt-ftparchive and served by nginx:
//
//	dists/stable/InRelease, Release, Release.gpg   the pointer files (InRelease ≈ 3 KB)
//	dists/stable/COMP/binary-ARCH/Packages{,.gz}     the index files they name
//	pool/main/b/bench-big/bench-big_1.0-1_amd64.deb  the 20 MiB package
//
// nginx serves it twice: on a "fast" port at loopback speed, and on a
// "WAN" port with limit_rate, the upstream of the fan-in runs (a mirror on
// the internet, so that the download itself is what 64 clients wait for).

const (
	metaPath = "dists/stable/InRelease"
	pkgPath  = "pool/main/b/bench-big/bench-big_1.0-1_amd64.deb"
)

// upstreamLayout is the components and architectures of the tree; their
// Packages files make the Release, and so InRelease, about 3 KB, the size
// of a small distribution's (a Debian suite's is far larger).
var (
	upstreamComponents = []string{"main"}
	upstreamArches     = []string{"amd64", "arm64"}
)

// repoFiles is what the upstream serves that the benchmark reads.
type repoFiles struct {
	meta, pkg []byte
}

// buildUpstream writes the repository under root and returns the bytes of
// InRelease and of the package.
func buildUpstream(root string, pkgSize int64, seed uint64) (*repoFiles, error) {
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	payload := make([]byte, pkgSize)
	r := rand.New(rand.NewPCG(seed, 0x70726f7879))
	for i := 0; i+8 <= len(payload); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			payload[i+j] = byte(v >> (8 * j))
		}
	}
	deb, err := debtest.Build(debtest.Spec{
		Package: "bench-big", Version: "1.0-1", Architecture: "amd64",
		Maintainer:  "Bench <bench@example.org>",
		Description: "proxy benchmark package\nRandom payload, so that nothing on the way compresses it.",
		Section:     "misc", Priority: "optional", InstalledSize: int(pkgSize >> 10),
		Files:       []debtest.File{{Path: "/usr/share/bench-big/payload.bin", Body: payload}},
		Compression: "none",
	})
	if err != nil {
		return nil, fmt.Errorf("build the package: %w", err)
	}
	if err := writeFile(filepath.Join(root, filepath.FromSlash(pkgPath)), deb); err != nil {
		return nil, err
	}
	packages, err := proc.Output(root, "apt-ftparchive", "packages", "pool/main")
	if err != nil {
		return nil, err
	}
	for _, comp := range upstreamComponents {
		for _, arch := range upstreamArches {
			var body []byte
			if comp == "main" && arch == "amd64" {
				body = packages
			}
			dir := filepath.Join(root, "dists", "stable", comp, "binary-"+arch)
			if err := writeFile(filepath.Join(dir, "Packages"), body); err != nil {
				return nil, err
			}
			var gz bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
			_, _ = zw.Write(body)
			_ = zw.Close()
			if err := writeFile(filepath.Join(dir, "Packages.gz"), gz.Bytes()); err != nil {
				return nil, err
			}
		}
	}
	rel, err := proc.Output(root, "apt-ftparchive",
		"-o", "APT::FTPArchive::Release::Origin=bench", "-o", "APT::FTPArchive::Release::Label=bench",
		"-o", "APT::FTPArchive::Release::Description=Synthetic archive of the packyard proxy benchmark: one component, two architectures and one large package, signed, laid out as a Debian mirror lays it out",
		"-o", "APT::FTPArchive::Release::Suite=stable", "-o", "APT::FTPArchive::Release::Codename=stable",
		"-o", "APT::FTPArchive::Release::Components="+strings.Join(upstreamComponents, " "),
		"-o", "APT::FTPArchive::Release::Architectures="+strings.Join(upstreamArches, " "),
		"release", "dists/stable")
	if err != nil {
		return nil, err
	}
	key, err := sign.Generate("Bench Archive", "archive@example.org", "", time.Now().Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	signer, err := sign.NewSigner(key)
	if err != nil {
		return nil, err
	}
	inRelease, err := signer.ClearSign(rel)
	if err != nil {
		return nil, err
	}
	det, err := signer.DetachArmored(rel)
	if err != nil {
		return nil, err
	}
	dist := filepath.Join(root, "dists", "stable")
	for name, b := range map[string][]byte{"Release": rel, "InRelease": inRelease, "Release.gpg": det} {
		if err := writeFile(filepath.Join(dist, name), b); err != nil {
			return nil, err
		}
	}
	return &repoFiles{meta: inRelease, pkg: deb}, nil
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// upstream is the nginx that serves the repository, with an access log
// that tells how many requests reached it.
type upstream struct {
	*nginx.Server
	fast, wan string // base URLs, with a trailing slash
	log       nginx.AccessLog
}

// startUpstream serves root on two free ports: fast, and WAN limited to
// rate bytes per second per connection (nginx limit_rate syntax; "" or
// "0": no limit).
func startUpstream(bin, dir, root, rate string) (*upstream, error) {
	fast, err := nginx.FreeAddr()
	if err != nil {
		return nil, err
	}
	wan, err := nginx.FreeAddr()
	if err != nil {
		return nil, err
	}
	limit := ""
	if rate != "" && rate != "0" {
		limit = "limit_rate " + rate + ";"
	}
	u := &upstream{fast: "http://" + fast + "/", wan: "http://" + wan + "/", log: nginx.AccessLog(filepath.Join(dir, "access.log"))}
	http := fmt.Sprintf(`
	%[6]s
	access_log %[1]s bench;
	server {
		listen %[2]s;
		root %[3]s;
	}
	server {
		listen %[4]s;
		root %[3]s;
		%[5]s
	}
`, u.log, fast, root, wan, limit, nginx.LogFormat)
	if u.Server, err = nginx.Start(bin, dir, 1, http); err != nil {
		return nil, fmt.Errorf("upstream nginx: %w", err)
	}
	if err := nginx.WaitHTTP(u.fast, u.Done, 30*time.Second); err != nil {
		u.Stop()
		return nil, fmt.Errorf("upstream nginx: %w (see %s)", err, dir)
	}
	return u, nil
}

// mark returns the current end of the access log, for count.
func (u *upstream) mark() int64 { return u.log.Mark() }

// count returns how many GETs of rel the upstream logged since mark, and
// how many requests of any path.
func (u *upstream) count(since int64, rel string) (n, all int) {
	n, all, _ = u.log.Count(since, rel)
	return n, all
}

// countBytes is count with the body bytes the GETs of rel were sent.
func (u *upstream) countBytes(since int64, rel string) (n, all int, bytes int64) {
	return u.log.Count(since, rel)
}
