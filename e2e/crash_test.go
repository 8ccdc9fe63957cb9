package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestKill9 kills the server with SIGKILL while uploads are in flight and
// checks, after a restart on the same data directory, that every
// acknowledged upload survived and is published, that the published
// generation is intact, that dnf installs the acknowledged packages, that
// an interrupted upload can simply be repeated, and that no temporary
// files are left behind.
func TestKill9(t *testing.T) {
	t.Parallel()
	dnf := newDNFRoot(t)
	data := t.TempDir()
	s := startServer(t, data)
	const repo, n, ackBeforeKill = "crash", 40, 5
	s.createRepo(t, repo)

	// Every fourth package carries 5 MiB; every eighth stalls halfway
	// through its body until the server is dead, so that some uploads are
	// certainly in flight when it dies.
	large := func(i int) bool { return i%4 == 0 }
	gated := func(i int) bool { return i%8 == 0 }
	pkgs := make([]builtRPM, n)
	for i := range pkgs {
		o := pkgOpts{payload: 2048}
		if large(i) {
			o.payload = 5 << 20
		}
		pkgs[i] = buildRPM(t, pkgName("crash", i), "1.0", o)
	}

	open := make(chan struct{})
	release := sync.OnceFunc(func() { close(open) })
	t.Cleanup(release)
	codes := make([]int, n)
	acks := make(chan int, n)
	var gates []*gatedReader
	var wg sync.WaitGroup
	for i, p := range pkgs {
		var body io.Reader = bytes.NewReader(p.data)
		var hdr http.Header
		if gated(i) {
			g := newGatedReader(p.data, len(p.data)/2, open)
			gates = append(gates, g)
			body, hdr = g, expectContinue()
		}
		wg.Go(func() {
			// A 2xx status is an acknowledgement even if the body of the
			// answer is cut off by the kill.
			codes[i], _, _, _ = s.putPackage(repo, p.file, body, int64(len(p.data)), hdr)
			if codes[i]/100 == 2 {
				acks <- i
			}
		})
	}
	deadline := time.After(60 * time.Second)
	for _, g := range gates {
		select {
		case <-g.reached:
		case <-deadline:
			t.Fatal("the stalling uploads did not reach their halfway point")
		}
	}
	for range ackBeforeKill {
		select {
		case <-acks:
		case <-deadline:
			t.Fatalf("fewer than %d uploads were acknowledged", ackBeforeKill)
		}
	}
	s.kill9()
	release()
	wg.Wait()

	var acked, unacked []builtRPM
	for i, p := range pkgs {
		switch {
		case codes[i] == http.StatusCreated:
			acked = append(acked, p)
		case codes[i] == 0:
			unacked = append(unacked, p)
		default:
			t.Errorf("PUT %s answered %d before the kill, want 201", p.file, codes[i])
		}
		if gated(i) && codes[i] != 0 {
			t.Errorf("PUT %s was answered %d although half its body was never sent", p.file, codes[i])
		}
	}
	t.Logf("%d of %d uploads were acknowledged before kill -9", len(acked), n)

	s2 := startServer(t, data)

	// Acknowledged uploads are recorded and in the current generation
	// straight after the restart: they were published before the answer.
	listed := map[string]bool{}
	for _, p := range s2.packages(t, repo) {
		listed[p.SHA256] = true
	}
	inPrimary := byName(fetchPrimary(t, s2, repo))
	for _, p := range acked {
		if !listed[p.sha256] {
			t.Errorf("acknowledged upload %s is not listed by the API after the restart", p.file)
		}
		if e, ok := inPrimary[p.name]; !ok || e.Checksum.Value != p.sha256 {
			t.Errorf("acknowledged upload %s is not in primary.xml after the restart", p.file)
		}
	}

	// An upload that was cut off can be repeated: it was either stored
	// completely (200, identical bytes) or not at all (201).
	var stored, lost int
	for _, p := range unacked {
		code, _, body, err := s2.putPackage(repo, p.file, bytes.NewReader(p.data), int64(len(p.data)), nil)
		switch {
		case err != nil:
			t.Errorf("repeat PUT %s: %v", p.file, err)
		case code == http.StatusOK:
			stored++
		case code == http.StatusCreated:
			lost++
		default:
			t.Errorf("repeat PUT %s: status %d, want 200 or 201: %s", p.file, code, body)
		}
	}
	t.Logf("of %d unacknowledged uploads, %d had been stored and %d were repeated", len(unacked), stored, lost)
	// One more upload makes sure a publish ran after the restart.
	extra := buildRPM(t, "crash-extra", "1.0", pkgOpts{})
	s2.mustPut(t, repo, extra)

	// The current generation is intact and lists exactly what the API lists.
	pub := map[string]bool{}
	for _, p := range verifyGeneration(t, s2, repo) {
		pub[p.Checksum.Value] = true
	}
	api := s2.packages(t, repo)
	if len(api) != n+1 || len(pub) != n+1 {
		t.Errorf("after the restart the API lists %d packages and primary.xml %d, want %d", len(api), len(pub), n+1)
	}
	for _, p := range api {
		if !pub[p.SHA256] {
			t.Errorf("%s is listed by the API but not published", p.Path)
		}
	}

	// dnf installs every acknowledged package.
	if len(acked) > 0 {
		args := []string{"install"}
		for _, p := range acked {
			args = append(args, p.name)
		}
		dnf.run(t, fromPath("crash", s2.url+"/"+repo+"/"), args...)
		dnf.requireInstalled(t, acked...)
	}

	tmp, err := os.ReadDir(filepath.Join(data, "blobs", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tmp {
		t.Errorf("temporary file left in blobs/tmp: %s", e.Name())
	}
}
