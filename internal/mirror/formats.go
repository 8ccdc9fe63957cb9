package mirror

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/format/upstream"
)

// Upload parameters of the formats (internal/format/deb and arch).
const (
	paramDistribution = "distribution"
	paramComponent    = "component"
	paramSignature    = "signature"
	// maxDB bounds a pacman database (NAME.files of a large repository
	// is some hundred megabytes).
	maxDB = 1 << 30
)

// signature fetches rel's detached signature sigRel and checks it over
// data (or over the blob digest when data is nil). Without a keyring
// (upstream_unsigned) a missing signature is accepted. It returns the
// signature, nil if none.
func (s *syncer) signature(ctx context.Context, rel, sigRel string, data []byte, digest string) ([]byte, error) {
	sig, _, err := s.fetchSmall(ctx, sigRel, 1<<20)
	if errors.Is(err, errMissing) && s.ver == nil {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", sigRel, err)
	}
	if s.ver == nil {
		return sig, nil
	}
	if data != nil {
		_, err = s.ver.VerifyDetached(data, sig)
	} else {
		var rd blob.Reader
		if rd, err = s.m.opts.Blobs.Open(ctx, blob.Digest(digest)); err == nil {
			_, err = s.ver.VerifyDetachedReader(rd, sig)
			rd.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("upstream %s does not verify with the mirror's upstream keys (%s): %w; nothing was synced", rel, sigRel, err)
	}
	return sig, nil
}

// rpm syncs a createrepo_c repository: repomd.xml, its signature, the
// files it names, and every package of primary.xml.
func (s *syncer) rpm(ctx context.Context) error {
	const pointer = "repodata/repomd.xml"
	md, src, err := s.fetchSmall(ctx, pointer, upstream.MaxPointer)
	if err != nil {
		return fmt.Errorf("upstream %s: %w", pointer, err)
	}
	s.stats.Upstream = strings.TrimSuffix(src, pointer)
	sig, err := s.signature(ctx, pointer, pointer+".asc", md, "")
	if err != nil {
		return err
	}
	files, err := upstream.ParseRepomd(md)
	if err != nil {
		return fmt.Errorf("upstream %s: %w", src, err)
	}
	var primary *upstream.IndexFile
	for i, f := range files {
		if f.Type == "primary" {
			primary = &files[i]
		}
		if f.Type == "primary" || s.exact {
			if err := s.storeIndex(ctx, f.Path, f.Path, f); err != nil {
				return fmt.Errorf("upstream %s: %w", f.Path, err)
			}
		}
	}
	if primary == nil {
		return fmt.Errorf("upstream %s names no primary data", src)
	}
	if err := s.storeBytes(ctx, pointer, md); err != nil {
		return err
	}
	if sig != nil {
		if err := s.storeBytes(ctx, pointer+".asc", sig); err != nil {
			return err
		}
	}
	if s.exact {
		if key, _, err := s.fetchSmall(ctx, pointer+".key", 1<<20); err == nil {
			if err := s.storeBytes(ctx, pointer+".key", key); err != nil {
				return err
			}
		}
	}
	s.prog.setPhase("packages")
	return s.scanIndex(ctx, primary.SHA256, func(r io.Reader) error {
		return upstream.ScanPrimary(r, func(e upstream.Entry) error {
			return s.queue(ctx, job{e: e, rel: e.Path, path: e.Path})
		})
	})
}

// release fetches a distribution's InRelease (or Release and
// Release.gpg), checks its signature and returns the signed text.
func (s *syncer) release(ctx context.Context, dir string) ([]byte, error) {
	in, _, err := s.fetchSmall(ctx, dir+"InRelease", upstream.MaxPointer)
	if err == nil {
		text := in
		if s.ver != nil {
			if text, _, err = s.ver.VerifyClearsigned(in); err != nil {
				return nil, fmt.Errorf("upstream %sInRelease does not verify with the mirror's upstream keys: %w; nothing was synced", dir, err)
			}
		} else if t, _, err := (&noVerify{}).text(in); err == nil {
			text = t
		}
		if err := s.storeBytes(ctx, dir+"InRelease", in); err != nil {
			return nil, err
		}
		// The detached pair too, for clients that ask for it.
		if rel, _, err := s.fetchSmall(ctx, dir+"Release", upstream.MaxPointer); err == nil {
			if sig, err := s.signature(ctx, dir+"Release", dir+"Release.gpg", rel, ""); err == nil {
				if err := s.storeBytes(ctx, dir+"Release", rel); err != nil {
					return nil, err
				}
				if sig != nil {
					if err := s.storeBytes(ctx, dir+"Release.gpg", sig); err != nil {
						return nil, err
					}
				}
			}
		}
		return text, nil
	}
	if !errors.Is(err, errMissing) {
		return nil, fmt.Errorf("upstream %sInRelease: %w", dir, err)
	}
	rel, _, err := s.fetchSmall(ctx, dir+"Release", upstream.MaxPointer)
	if err != nil {
		return nil, fmt.Errorf("upstream %sRelease: %w", dir, err)
	}
	sig, err := s.signature(ctx, dir+"Release", dir+"Release.gpg", rel, "")
	if err != nil {
		return nil, err
	}
	if err := s.storeBytes(ctx, dir+"Release", rel); err != nil {
		return nil, err
	}
	if sig != nil {
		if err := s.storeBytes(ctx, dir+"Release.gpg", sig); err != nil {
			return nil, err
		}
	}
	return rel, nil
}

// deb syncs the configured distributions of an APT repository.
func (s *syncer) deb(ctx context.Context) error {
	for _, dist := range s.st.Distributions {
		dir := "dists/" + dist + "/"
		text, err := s.release(ctx, dir)
		if err != nil {
			return err
		}
		if s.stats.Upstream == "" {
			s.stats.Upstream = s.bases[0]
		}
		rel, err := upstream.ParseRelease(text)
		if err != nil {
			return fmt.Errorf("upstream %sRelease: %w", dir, err)
		}
		byPath := map[string]upstream.IndexFile{}
		for _, f := range rel.Files {
			byPath[f.Path] = f
		}
		comps := s.st.Components
		if len(comps) == 0 {
			comps = rel.Components
		}
		arches := slices.Clone(s.st.Architectures)
		if len(arches) == 0 {
			for _, a := range rel.Architectures {
				if a != "source" && a != "all" {
					arches = append(arches, a)
				}
			}
		}
		if slices.Contains(rel.Architectures, "all") {
			arches = append(arches, "all")
		}
		for _, comp := range comps {
			for _, arch := range arches {
				if err := s.debIndex(ctx, dir, dist, comp, arch, rel, byPath); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// debIndex copies one component's binary-ARCH index and its packages.
func (s *syncer) debIndex(ctx context.Context, dir, dist, comp, arch string, rel *upstream.Release, byPath map[string]upstream.IndexFile) error {
	sub := comp + "/binary-" + arch + "/"
	if s.exact {
		for _, f := range rel.Files {
			if !strings.HasPrefix(f.Path, sub) || strings.Contains(f.Path, "/by-hash/") {
				continue
			}
			err := s.storeIndex(ctx, dir+f.Path, dir+f.Path, f)
			if errors.Is(err, errMissing) {
				continue // Release files list indexes mirrors need not carry
			}
			if err != nil {
				return fmt.Errorf("upstream %s%s: %w", dir, f.Path, err)
			}
			if rel.AcquireByHash {
				s.addFile(dir+sub+"by-hash/SHA256/"+f.SHA256, f.SHA256, f.Size)
			}
		}
	}
	var idx *upstream.IndexFile
	for _, name := range []string{"Packages.xz", "Packages.gz", "Packages"} {
		f, ok := byPath[sub+name]
		if !ok {
			continue
		}
		if s.exact {
			if _, err := s.m.opts.Blobs.Stat(ctx, blob.Digest(f.SHA256)); err != nil {
				continue
			}
		} else if err := s.storeIndex(ctx, dir+f.Path, dir+f.Path, f); errors.Is(err, errMissing) {
			continue
		} else if err != nil {
			return fmt.Errorf("upstream %s%s: %w", dir, f.Path, err)
		}
		idx = &f
		break
	}
	if idx == nil {
		if arch == "all" {
			return nil
		}
		return fmt.Errorf("upstream %sRelease lists no Packages index the upstream serves for %s/%s", dir, comp, arch)
	}
	s.prog.setPhase("packages")
	params := format.UploadParams{paramDistribution: dist, paramComponent: comp}
	return s.scanIndex(ctx, idx.SHA256, func(r io.Reader) error {
		return upstream.ScanPackages(r, func(e upstream.Entry) error {
			return s.queue(ctx, job{e: e, rel: e.Path, path: e.Path, scope: dist + "/" + comp, params: params})
		})
	})
}

// arch syncs a pacman repository's database for each architecture.
func (s *syncer) arch(ctx context.Context) error {
	for _, a := range s.st.Architectures {
		dbRel := a + "/" + s.dbName + ".db"
		digest, size, err := s.fetchAny(ctx, dbRel, maxDB)
		if err != nil {
			return fmt.Errorf("upstream %s: %w", dbRel, err)
		}
		if s.stats.Upstream == "" {
			s.stats.Upstream = s.bases[0]
		}
		sig, err := s.signature(ctx, dbRel, dbRel+".sig", nil, digest)
		dbSigned := err == nil && sig != nil
		if err != nil && !errors.Is(err, errMissing) {
			return err
		}
		if s.exact {
			s.addFile(dbRel, digest, size)
			if sig != nil {
				if err := s.storeBytes(ctx, dbRel+".sig", sig); err != nil {
					return err
				}
			}
			filesRel := a + "/" + s.dbName + ".files"
			if fd, fsize, err := s.fetchAny(ctx, filesRel, maxDB); err == nil {
				if fsig, err := s.signature(ctx, filesRel, filesRel+".sig", nil, fd); err == nil || !dbSigned {
					s.addFile(filesRel, fd, fsize)
					if fsig != nil {
						if err := s.storeBytes(ctx, filesRel+".sig", fsig); err != nil {
							return err
						}
					}
				}
			}
		}
		s.prog.setPhase("packages")
		err = s.scanIndex(ctx, digest, func(r io.Reader) error {
			return upstream.ScanArchDB(r, func(e upstream.Entry) error {
				if s.ver != nil && !dbSigned && len(e.Signature) == 0 {
					return fmt.Errorf("upstream %s is not signed and its package %s has no signature: nothing to check it with the mirror's upstream keys", dbRel, e.Path)
				}
				params := format.UploadParams{}
				if len(e.Signature) > 0 {
					params[paramSignature] = base64.StdEncoding.EncodeToString(e.Signature)
				}
				return s.queue(ctx, job{e: e, rel: a + "/" + e.Path, params: params})
			})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// noVerify extracts the text of a clearsigned document without checking
// it (upstream_unsigned mirrors).
type noVerify struct{}

func (noVerify) text(doc []byte) ([]byte, string, error) {
	const begin, sigStart = "-----BEGIN PGP SIGNED MESSAGE-----", "\n-----BEGIN PGP SIGNATURE-----"
	s := string(doc)
	i := strings.Index(s, begin)
	j := strings.Index(s, sigStart)
	if i < 0 || j < i {
		return nil, "", errors.New("not clearsigned")
	}
	body := s[i+len(begin) : j]
	if k := strings.Index(body, "\n\n"); k >= 0 {
		body = body[k+2:]
	}
	return []byte(body + "\n"), "", nil
}
