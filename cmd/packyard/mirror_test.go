package main

import (
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/client"
)

func TestProgressLine(t *testing.T) {
	p := &client.SyncProgress{Phase: "packages", Packages: 200, Listed: true, Done: 50, Bytes: 10 << 20}
	got := progressLine(p, 10*time.Second)
	for _, want := range []string{"packages", "50/200 packages", "10.0 MiB", "1.0 MiB/s", "ETA 30s"} {
		if !strings.Contains(got, want) {
			t.Errorf("progressLine = %q, want it to contain %q", got, want)
		}
	}
	// While the upstream's list is still being read the total is open.
	p = &client.SyncProgress{Phase: "metadata", Packages: 10, Done: 0}
	if got := progressLine(p, time.Second); !strings.Contains(got, "0/10+ packages") || strings.Contains(got, "ETA") {
		t.Errorf("progressLine while listing = %q", got)
	}
	if humanBytes(512) != "512 B" || humanBytes(3<<30) != "3.0 GiB" {
		t.Errorf("humanBytes: %q %q", humanBytes(512), humanBytes(3<<30))
	}
}
