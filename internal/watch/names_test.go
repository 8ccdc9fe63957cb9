package watch

import (
	"errors"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		format, name string
		want         kind
	}{
		{"rpm", "foo-1.0-1.x86_64.rpm", kindPackage},
		{"rpm", "foo-1.0-1.src.rpm", kindPackage},
		{"rpm", ".rpm", kindTemp},
		{"rpm", "rpm", kindOther},
		{"rpm", "foo.RPM", kindOther},
		{"rpm", "foo.deb", kindOther},
		{"rpm", ".foo.rpm.Xa9d2k", kindTemp},
		{"rpm", "foo.rpm.part", kindTemp},
		{"rpm", "foo.rpm.PART", kindTemp},
		{"rpm", "foo.rpm.partial", kindTemp},
		{"rpm", "foo.rpm.filepart", kindTemp},
		{"rpm", "foo.rpm.tmp", kindTemp},
		{"rpm", "foo.rpm~", kindTemp},
		{"rpm", "foo.rpm.crdownload", kindTemp},
		{"rpm", "#foo.rpm#", kindTemp},
		{"rpm", "README", kindOther},
		{"deb", "foo_1.0_amd64.deb", kindPackage},
		{"deb", "foo-udeb_1.0_amd64.udeb", kindPackage},
		{"deb", "foo.rpm", kindOther},
		{"arch", "foo-1-1-x86_64.pkg.tar.zst", kindPackage},
		{"arch", "foo-1-1-x86_64.pkg.tar.xz", kindPackage},
		{"arch", "foo-1-1-any.pkg.tar.gz", kindPackage},
		{"arch", "foo-1-1-x86_64.pkg.tar.zst.sig", kindSignature},
		{"arch", "foo-1-1-x86_64.pkg.tar.bz2", kindOther},
		{"arch", "foo.sig", kindOther},
		{"rpm", "foo-1-1-x86_64.pkg.tar.zst.sig", kindOther},
		{"ips", "foo.p5p", kindOther},
	}
	for _, tc := range tests {
		if got := classify(tc.format, tc.name); got != tc.want {
			t.Errorf("classify(%s, %q) = %d, want %d", tc.format, tc.name, got, tc.want)
		}
	}
}

func TestNumbered(t *testing.T) {
	tests := []struct {
		format, name string
		n            int
		want         string
	}{
		{"rpm", "foo-1.0-1.x86_64.rpm", 0, "foo-1.0-1.x86_64.rpm"},
		{"rpm", "foo-1.0-1.x86_64.rpm", 1, "foo-1.0-1.x86_64.1.rpm"},
		{"deb", "foo_1.0_amd64.udeb", 12, "foo_1.0_amd64.12.udeb"},
		{"arch", "foo-1-1-x86_64.pkg.tar.zst", 2, "foo-1-1-x86_64.2.pkg.tar.zst"},
		{"rpm", "broken", 3, "broken.3"},
	}
	for _, tc := range tests {
		if got := numbered(tc.format, tc.name, tc.n); got != tc.want {
			t.Errorf("numbered(%q, %d) = %q, want %q", tc.name, tc.n, got, tc.want)
		}
	}
}

func TestDebScope(t *testing.T) {
	tests := []struct {
		rel            string
		cfg            folderConfig
		dist, comp     string
		noDistribution bool
	}{
		{rel: "bookworm/main/a.deb", dist: "bookworm", comp: "main"},
		{rel: "bookworm/contrib/a.deb", cfg: folderConfig{distribution: "sid", component: "extra"}, dist: "bookworm", comp: "contrib"},
		{rel: "bookworm/a.deb", dist: "bookworm", comp: "main"},
		{rel: "bookworm/a.deb", cfg: folderConfig{component: "extra"}, dist: "bookworm", comp: "extra"},
		{rel: "a.deb", cfg: folderConfig{distribution: "sid"}, dist: "sid", comp: "main"},
		{rel: "a.deb", cfg: folderConfig{distribution: "sid", component: "extra"}, dist: "sid", comp: "extra"},
		{rel: "a.deb", cfg: folderConfig{component: "extra"}, noDistribution: true},
		{rel: "a/b/c/a.deb", noDistribution: true},
	}
	for _, tc := range tests {
		dist, comp, err := debScope(tc.rel, tc.cfg)
		if tc.noDistribution {
			if !errors.Is(err, errNoDistribution) || !refused(err) {
				t.Errorf("debScope(%q, %+v): %v, want errNoDistribution", tc.rel, tc.cfg, err)
			}
			continue
		}
		if err != nil || dist != tc.dist || comp != tc.comp {
			t.Errorf("debScope(%q, %+v) = %q, %q, %v; want %q, %q", tc.rel, tc.cfg, dist, comp, err, tc.dist, tc.comp)
		}
	}
}
