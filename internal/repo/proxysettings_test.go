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
		{"hosted with upstream", meta.KindHosted, meta.FormatRPM, Settings{ProxySettings: ProxySettings{Upstreams: []string{"http://a/"}}}, "proxy and mirror repositories"},
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
		{"union deb", meta.KindProxy, meta.FormatDeb, Settings{Keys: &keys, ProxySettings: ProxySettings{Upstreams: []string{"http://a/"}, Mode: ModeUnion}}, ""},
		{"union arch", meta.KindProxy, meta.FormatArch, Settings{Keys: &keys, ProxySettings: ProxySettings{Upstreams: []string{"http://a/"}, Mode: ModeUnion}}, ""},
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

func TestCheckMirrorSettings(t *testing.T) {
	keys := []string{"default"}
	none := []string{}
	up := ProxySettings{Upstreams: []string{"http://a/"}}
	trusted := MirrorSettings{UpstreamKeys: []string{"KEY"}}
	for _, tc := range []struct {
		name, format string
		st           Settings
		want         string
	}{
		{"union rpm", meta.FormatRPM, Settings{Keys: &keys, ProxySettings: up, MirrorSettings: trusted}, ""},
		{"exact rpm", meta.FormatRPM, Settings{ProxySettings: ProxySettings{Upstreams: up.Upstreams, Mode: ModeExact}, MirrorSettings: trusted}, ""},
		{"no upstream", meta.FormatRPM, Settings{Keys: &keys, MirrorSettings: trusted}, "at least one upstream"},
		{"no key", meta.FormatRPM, Settings{Keys: &keys, ProxySettings: up}, "--upstream-key"},
		{"unsigned accepted", meta.FormatRPM, Settings{Keys: &keys, ProxySettings: up, MirrorSettings: MirrorSettings{UpstreamUnsigned: true}}, ""},
		{"union without signing key", meta.FormatRPM, Settings{Keys: &none, ProxySettings: up, MirrorSettings: trusted}, "signing key"},
		{"exact with keys", meta.FormatRPM, Settings{Keys: &keys, ProxySettings: ProxySettings{Upstreams: up.Upstreams, Mode: ModeExact}, MirrorSettings: trusted}, "signs nothing"},
		{"passthrough", meta.FormatRPM, Settings{Keys: &keys, ProxySettings: ProxySettings{Upstreams: up.Upstreams, Mode: ModePassthrough}, MirrorSettings: trusted}, "union or exact"},
		{"deb without distribution", meta.FormatDeb, Settings{Keys: &keys, ProxySettings: up, MirrorSettings: trusted}, "distributions"},
		{"arch without architectures", meta.FormatArch, Settings{Keys: &keys, ProxySettings: up, MirrorSettings: trusted}, "architectures"},
		{"arch $arch url", meta.FormatArch, Settings{Keys: &keys, Architectures: []string{"x86_64"}, ProxySettings: ProxySettings{Upstreams: []string{"https://m/$repo/os/$arch"}}, MirrorSettings: trusted}, ""},
		{"$arch in rpm url", meta.FormatRPM, Settings{Keys: &keys, ProxySettings: ProxySettings{Upstreams: []string{"https://m/$arch/"}}, MirrorSettings: trusted}, "must be an http"},
		{"bad pattern", meta.FormatRPM, Settings{Keys: &keys, ProxySettings: up, MirrorSettings: MirrorSettings{UpstreamKeys: []string{"K"}, Include: []string{"[x"}}}, "pattern"},
		{"short interval", meta.FormatRPM, Settings{Keys: &keys, ProxySettings: up, MirrorSettings: MirrorSettings{UpstreamKeys: []string{"K"}, SyncInterval: "5s"}}, "sync_interval"},
		{"metalink on deb", meta.FormatDeb, Settings{Keys: &keys, ProxySettings: up, MirrorSettings: MirrorSettings{UpstreamKeys: []string{"K"}, Distributions: []string{"s"}, Metalink: "http://m/?a=b"}}, "rpm mirrors"},
		{"peers", meta.FormatRPM, Settings{Keys: &keys, ProxySettings: ProxySettings{Upstreams: up.Upstreams, Peers: []string{"http://p/"}}, MirrorSettings: trusted}, "proxy repositories"},
	} {
		err := checkKind(meta.KindMirror, tc.format, tc.st)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !errors.Is(err, ErrInvalidRepo) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want ErrInvalidRepo saying %q", tc.name, err, tc.want)
		}
	}
	if err := checkKind(meta.KindHosted, meta.FormatRPM, Settings{MirrorSettings: MirrorSettings{Retain: 2}}); err == nil || !strings.Contains(err.Error(), "mirror repositories") {
		t.Errorf("mirror setting on a hosted repository: %v", err)
	}
}
