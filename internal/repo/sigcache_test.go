package repo

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// countingSigner signs by naming the state and counting its calls.
type countingSigner struct {
	mu    sync.Mutex
	calls int
}

func (s *countingSigner) DetachArmored(data []byte) ([]byte, error) { return nil, nil }
func (s *countingSigner) DetachBinary(data []byte) ([]byte, error)  { return nil, nil }
func (s *countingSigner) ClearSign(data []byte) ([]byte, error)     { return nil, nil }
func (s *countingSigner) DetachBinaryState(state []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return fmt.Appendf(nil, "sig %d of %s", s.calls, state), nil
}

func TestSigCacheReusesUnchanged(t *testing.T) {
	var c sigCache
	inner := &countingSigner{}
	t0 := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	build := func(keys string, at time.Time, states ...string) []string {
		t.Helper()
		s, keep := c.wrap(inner, []byte(keys), at)
		var out []string
		for _, st := range states {
			sig, err := s.DetachBinaryState([]byte(st))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(sig))
		}
		keep()
		return out
	}
	first := build("key A", t0, "x86_64.db", "aarch64.db")
	if inner.calls != 2 {
		t.Fatalf("first build signed %d times, want 2", inner.calls)
	}
	// One database changed: only it is signed again; the other keeps its
	// signature, byte for byte.
	second := build("key A", t0.Add(time.Minute), "x86_64.db v2", "aarch64.db")
	if inner.calls != 3 || second[1] != first[1] || second[0] == first[0] {
		t.Fatalf("second build: %d calls, sigs %q after %q", inner.calls, second, first)
	}
	// Only the last build is kept: x86_64.db (v1) was not in it.
	build("key A", t0.Add(2*time.Minute), "x86_64.db")
	if inner.calls != 4 {
		t.Fatalf("a database from two builds ago reused: %d calls", inner.calls)
	}
	// Other keys sign again.
	build("key B", t0.Add(3*time.Minute), "x86_64.db")
	if inner.calls != 5 {
		t.Fatalf("signature reused across keys: %d calls", inner.calls)
	}
	// An old signature is renewed.
	build("key B", t0.Add(3*time.Minute+sigReuseFor), "x86_64.db")
	if inner.calls != 6 {
		t.Fatalf("signature older than %s reused: %d calls", sigReuseFor, inner.calls)
	}
	// A clock that went back does not reuse a signature from the future.
	build("key B", t0, "x86_64.db")
	if inner.calls != 7 {
		t.Fatalf("signature from the future reused: %d calls", inner.calls)
	}
}
