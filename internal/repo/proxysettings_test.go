package repo

import (
	"errors"
	"strings"
	"testing"

	"github.com/packyard/packyard/internal/meta"
)

func TestCheckKindProxySettings(t *testing.T) {
	keys := []string{"default"}
	for _, tc := range []struct {
		name, kind, format string
		st                 Settings
		want               string // "" for valid, else a fragment of the error
	}{
		{"hosted", meta.KindHosted, meta.FormatRPM, Settings{}, ""},
		{"hosted with upstream", meta.KindHosted, meta.FormatRPM, Settings{ProxySettings: ProxySettings{Upstreams: []string{"http://a/"}}}, "proxy repositories"},
		{"proxy", meta.KindProxy, meta.FormatDeb, Settings{ProxySettings: ProxySettings{Upstreams: []string{"https://a/debian/"}, Peers: []string{"http://b:8080"}, MaxAge: "1m", MaxCacheSize: "50G"}}, ""},
		{"no upstream", meta.KindProxy, meta.FormatRPM, Settings{}, "at least one upstream"},
		{"ftp upstream", meta.KindProxy, meta.FormatRPM, Settings{ProxySettings: ProxySettings{Upstreams: []string{"ftp://a/"}}}, "http:// or https://"},
		{"credentials", meta.KindProxy, meta.FormatRPM, Settings{ProxySettings: ProxySettings{Upstreams: []string{"http://u:p@a/"}}}, "credentials"},
		{"twice", meta.KindProxy, meta.FormatRPM, Settings{ProxySettings: ProxySettings{Upstreams: []string{"http://a/x", "http://a/x/"}}}, "twice"},
		{"bad max_age", meta.KindProxy, meta.FormatRPM, Settings{ProxySettings: ProxySettings{Upstreams: []string{"http://a/"}, MaxAge: "soon"}}, "max_age"},
		{"bad size", meta.KindProxy, meta.FormatRPM, Settings{ProxySettings: ProxySettings{Upstreams: []string{"http://a/"}, MaxCacheSize: "lots"}}, "max_cache_size"},
		{"bad mode", meta.KindProxy, meta.FormatRPM, Settings{ProxySettings: ProxySettings{Upstreams: []string{"http://a/"}, Mode: "exact"}}, "passthrough or union"},
		{"union rpm", meta.KindProxy, meta.FormatRPM, Settings{Keys: &keys, ProxySettings: ProxySettings{Upstreams: []string{"http://a/"}, Mode: ModeUnion}}, ""},
		{"union unsigned", meta.KindProxy, meta.FormatRPM, Settings{ProxySettings: ProxySettings{Upstreams: []string{"http://a/"}, Mode: ModeUnion}}, "signing key"},
		{"union deb", meta.KindProxy, meta.FormatDeb, Settings{Keys: &keys, ProxySettings: ProxySettings{Upstreams: []string{"http://a/"}, Mode: ModeUnion}}, "rpm proxy repositories only"},
		{"passthrough with keys", meta.KindProxy, meta.FormatRPM, Settings{Keys: &keys, ProxySettings: ProxySettings{Upstreams: []string{"http://a/"}}}, "signs nothing"},
	} {
		err := checkKind(tc.kind, tc.format, tc.st)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !errors.Is(err, ErrInvalidRepo) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want ErrInvalidRepo saying %q", tc.name, err, tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "500M": 500 << 20, "50G": 50 << 30, "2TiB": 2 << 40, "1k": 1024} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-5G", "G", "1.5G", "9999999999T"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}
