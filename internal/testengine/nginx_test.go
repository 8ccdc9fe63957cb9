package testengine_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/testengine"
)

func TestNginx(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := testengine.StartNginx(t, root, testengine.NginxOptions{})
	resp, err := http.Get(n.URL + "/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello\n" {
		t.Fatalf("GET /a.txt: %d %q", resp.StatusCode, b)
	}
	if got := n.Get(t, "/missing"); got != 404 {
		t.Fatalf("GET /missing: %d, want 404", got)
	}
	if got := n.Requests(t, "/a.txt"); got != 1 {
		t.Fatalf("access log counts %d requests of /a.txt, want 1: %+v", got, n.Access(t))
	}
	n.Kill(t)
	if _, err := http.Get(n.URL + "/a.txt"); err == nil {
		t.Fatal("GET succeeded after Kill")
	}
	n.Start(t)
	if got := n.Get(t, "/a.txt"); got != 200 {
		t.Fatalf("GET /a.txt after Start: %d", got)
	}
	// nginx logs a request just after its response ends.
	deadline := time.Now().Add(2 * time.Second)
	for n.Requests(t, "/a.txt") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := n.Requests(t, "/a.txt"); got != 2 {
		t.Fatalf("access log counts %d requests of /a.txt, want 2", got)
	}
}
