package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/meta"
)

const (
	debRelease  = "dists/stable/Release"
	debPackages = "dists/stable/main/binary-amd64/Packages"
)

// Two versions of a Packages index of the same length, so that only
// their digests tell them apart.
var (
	pkOld = []byte("Package: foo\nVersion: 1\nFilename: pool/foo_1.deb\n\n")
	pkNew = []byte("Package: foo\nVersion: 2\nFilename: pool/foo_2.deb\n\n")
)

func releaseFor(pk []byte) []byte {
	return []byte(fmt.Sprintf("Origin: test\nSuite: stable\nSHA256:\n %s %d main/binary-amd64/Packages\n", hexSum(pk), len(pk)))
}

// TestGroupIndexFromPointersUpstream: the index files a pointer names come
// from the upstream that pointer came from, not from the first upstream
// (a lagging mirror at another version).
func TestGroupIndexFromPointersUpstream(t *testing.T) {
	lagging, current := newUpstream(t), newUpstream(t)
	lagging.status["dists/stable/InRelease"] = http.StatusInternalServerError
	lagging.set(debRelease, releaseFor(pkOld))
	lagging.set(debPackages, pkOld)
	current.set(debRelease, releaseFor(pkNew))
	current.set(debPackages, pkNew)
	e := newEnv(t, meta.FormatDeb, lagging, current)
	code, b, _, err := e.get(t, debRelease)
	if err != nil || code != 200 || !bytes.Equal(b, releaseFor(pkNew)) {
		t.Fatalf("Release: %d %v %s", code, err, b)
	}
	if n := lagging.count(debPackages); n != 0 {
		t.Errorf("the Packages the current upstream's Release names was asked of the lagging one %d times", n)
	}
	if _, b, _, _ := e.get(t, debPackages); !bytes.Equal(b, pkNew) {
		t.Errorf("Packages: %q, want the version Release names", b)
	}
}

// TestGroupIndexDoesNotTakeAnotherDownload: a group's index download does
// not take the result of a download in flight for another version of the
// file, and refuses a result whose digest is not the one its pointer
// names.
func TestGroupIndexDoesNotTakeAnotherDownload(t *testing.T) {
	for _, tc := range []struct {
		name string
		// flightWant is what the download in flight checks against; it
		// delivers pkOld either way.
		flightWant string
		wantCode   int
	}{
		{"in flight for the old version", hexSum(pkOld), http.StatusOK},
		{"in flight with the wrong bytes", hexSum(pkNew), http.StatusBadGateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUpstream(t)
			u.set(debRelease, releaseFor(pkNew))
			u.set(debPackages, pkNew)
			e := newEnv(t, meta.FormatDeb, u)
			info, err := blob.Put(t.Context(), e.blobs, pkOld)
			if err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("%d/%s", e.repo.ID, debPackages)
			fl, err := newFlight(key, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			fl.want = tc.flightWant
			fl.finish(&fetched{Digest: string(info.Digest), Size: info.Size, Source: "elsewhere"}, nil)
			e.p.mu.Lock()
			e.p.flights[key] = fl
			e.p.mu.Unlock()

			code, b, _, _ := e.get(t, debRelease)
			if code != tc.wantCode {
				t.Fatalf("Release: %d %s, want %d", code, b, tc.wantCode)
			}
			rec, err := e.store.GetProxyFile(t.Context(), e.repo.ID, debPackages)
			switch {
			case code == http.StatusOK && (err != nil || rec.Digest != hexSum(pkNew)):
				t.Errorf("Packages recorded as %+v (%v), want the digest Release names", rec, err)
			case code != http.StatusOK && !errors.Is(err, meta.ErrNotFound):
				t.Errorf("a failed group recorded Packages: %+v %v", rec, err)
			}
			if code != http.StatusOK {
				if _, err := e.store.GetProxyFile(t.Context(), e.repo.ID, debRelease); !errors.Is(err, meta.ErrNotFound) {
					t.Errorf("Release recorded without the Packages it names: %v", err)
				}
			}
		})
	}
}

// TestStalePeerDoesNotBlockRefresh: a peer holding another version of an
// index file is skipped for the upstream, whether its ETag says so or only
// its bytes do.
func TestStalePeerDoesNotBlockRefresh(t *testing.T) {
	for _, noETag := range []bool{false, true} {
		t.Run(fmt.Sprintf("noETag=%v", noETag), func(t *testing.T) {
			u, peer := newUpstream(t), newUpstream(t)
			u.set(debRelease, releaseFor(pkNew))
			u.set(debPackages, pkNew)
			peer.set("cache/"+debPackages, pkOld)
			peer.noETag = noETag
			e := newEnv(t, meta.FormatDeb, u)
			e.cfg.Peers = []string{peer.srv.URL}
			code, b, _, err := e.get(t, debRelease)
			if err != nil || code != 200 || !bytes.Equal(b, releaseFor(pkNew)) {
				t.Fatalf("Release with a stale peer: %d %v %s", code, err, b)
			}
			if n := peer.count("cache/" + debPackages); n != 1 {
				t.Errorf("peer asked %d times for Packages, want 1", n)
			}
			if _, b, _, _ := e.get(t, debPackages); !bytes.Equal(b, pkNew) {
				t.Errorf("Packages: %q", b)
			}
		})
	}
}

// TestXMLTokenBound: one huge token of an upstream index (a text node, a
// comment, CDATA full of '<') is refused, not read into memory whole.
func TestXMLTokenBound(t *testing.T) {
	big := strings.Repeat("x", maxToken+1)
	lt := strings.Repeat("<", maxToken+1)
	pkg := func(desc string) string {
		return `<?xml version="1.0"?><metadata xmlns="http://linux.duke.edu/metadata/common" packages="1">` +
			`<package type="rpm"><name>foo</name><checksum type="sha256" pkgid="YES">` + strings.Repeat("a", 64) + `</checksum>` +
			desc + `<location href="Packages/foo.rpm"/></package></metadata>`
	}
	e := newEnv(t, meta.FormatRPM)
	for name, doc := range map[string]string{
		"text":    pkg("<description>" + big + "</description>"),
		"comment": pkg("<!--" + lt + "-->"),
		"cdata":   pkg("<description><![CDATA[" + lt + "]]></description>"),
		"attr":    pkg(`<summary lang="` + big + `"/>`),
	} {
		if err := copyPackages(strings.NewReader(doc), new(bytes.Buffer), true, map[string]bool{}); !errors.Is(err, errTokenTooLarge) {
			t.Errorf("copyPackages, %s: %v, want errTokenTooLarge", name, err)
		}
		info, err := blob.Put(t.Context(), e.blobs, gz(t, doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.p.readPrimary(t.Context(), string(info.Digest), "", func(string, string, int64) error { return nil }); !errors.Is(err, errTokenTooLarge) {
			t.Errorf("readPrimary, %s: %v, want errTokenTooLarge", name, err)
		}
	}
	// Tokens within the bound, however many, are fine.
	doc := pkg("<description>" + strings.Repeat("y", maxToken/2) + "</description>" + strings.Repeat("<p>"+strings.Repeat("z", maxToken/2)+"</p>", 3))
	var got []string
	info, err := blob.Put(t.Context(), e.blobs, gz(t, doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.p.readPrimary(t.Context(), string(info.Digest), "", func(p, _ string, _ int64) error { got = append(got, p); return nil }); err != nil || len(got) != 1 {
		t.Errorf("readPrimary of large tokens within the bound: %v %v", got, err)
	}
	if err := copyPackages(strings.NewReader(doc), new(bytes.Buffer), true, map[string]bool{}); err != nil {
		t.Errorf("copyPackages of large tokens within the bound: %v", err)
	}
}
