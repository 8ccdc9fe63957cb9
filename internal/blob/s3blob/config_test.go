package s3blob_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/blob/s3blob"
	"github.com/packyard/packyard/internal/testengine"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want s3blob.Config
	}{
		{"s3://bucket", s3blob.Config{Bucket: "bucket"}},
		{"s3://bucket/", s3blob.Config{Bucket: "bucket"}},
		{"s3://my-bucket/a/b/", s3blob.Config{Bucket: "my-bucket", Prefix: "a/b"}},
		{"s3://b12/pre?endpoint=http://127.0.0.1:9000", s3blob.Config{Bucket: "b12", Prefix: "pre", Endpoint: "http://127.0.0.1:9000"}},
		{"s3://bucket?endpoint=https://s3.example.com/&region=eu-west-3",
			s3blob.Config{Bucket: "bucket", Endpoint: "https://s3.example.com/", Region: "eu-west-3"}},
	} {
		got, err := s3blob.ParseURL(tc.url)
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ url, msg string }{
		{"", "scheme is not s3"},
		{"bucket/prefix", "scheme is not s3"},
		{"https://bucket/prefix", "scheme is not s3"},
		{"s3:bucket", "no // after s3:"},
		{"s3:///prefix", "no bucket"},
		{"s3://key:secret@bucket/", "credentials do not belong in the URL"},
		{"s3://Bad_Bucket/", "bucket"},
		{"s3://bucket:9000/", "bucket"},
		{"s3://bucket/a//b", "path segment"},
		{"s3://bucket/a/../b", "path segment"},
		{"s3://bucket/#frag", "fragment"},
		{"s3://bucket?endpoint=127.0.0.1:9000", "endpoint must start with http:// or https://"},
		{"s3://bucket?endpoint=ftp://host", "endpoint must start with http:// or https://"},
		{"s3://bucket?endpoint=http://host/path", "no path"},
		{"s3://bucket?endpoint=http://", "no host"},
		{"s3://bucket?region=a&region=b", "region given 2 times"},
		{"s3://bucket?secret=x", `unknown parameter "secret"`},
		{"s3://bucket?%zz", "query"},
		{"s3://bu\x7fcket", "store URL"},
	} {
		if got, err := s3blob.ParseURL(tc.url); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseURL(%q) = %+v, %v; want an error about %q", tc.url, got, err, tc.msg)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	b := testengine.MinIO(t)
	for _, tc := range []struct {
		name    string
		change  func(c *s3blob.Config)
		msg     string
		wantErr error
	}{
		{"NoBucket", func(c *s3blob.Config) { c.Bucket = "" }, "no bucket configured", nil},
		{"MissingBucket", func(c *s3blob.Config) { c.Bucket = "never-created" }, "bucket never-created at http://127.0.0.1", nil},
		{"WrongSecret", func(c *s3blob.Config) { c.SecretKey += "x" }, "refused the credentials", nil},
		{"WrongAccessKey", func(c *s3blob.Config) { c.AccessKey = "nobody" }, "refused the credentials", nil},
		{"NoCredentials", func(c *s3blob.Config) {
			c.AccessKey, c.SecretKey = "", ""
			for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
				"AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SHARED_CREDENTIALS_FILE"} {
				t.Setenv(v, "")
			}
			t.Setenv("HOME", t.TempDir())
		}, "refused the credentials", nil},
		{"BadPrefix", func(c *s3blob.Config) { c.Prefix = "a//b" }, "path segment", nil},
		{"SmallParts", func(c *s3blob.Config) { c.PartSize = 1 << 20 }, "part size", nil},
		{"BadEndpoint", func(c *s3blob.Config) { c.Endpoint = "tcp://host" }, "scheme must be http or https", nil},
		{"NoServer", func(c *s3blob.Config) { c.Endpoint = "http://" + closedAddr(t) }, "connection refused", blob.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(t, b, "")
			tc.change(&cfg)
			start := time.Now()
			s, err := s3blob.Open(t.Context(), cfg)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded, want an error about %q", tc.msg)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Open: %v; want an error about %q", err, tc.msg)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Open: %v; want an error that wraps %v", err, tc.wantErr)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Open took %v", d)
			}
		})
	}
}

func TestEnvironmentCredentials(t *testing.T) {
	b := testengine.MinIO(t)
	t.Setenv("AWS_ACCESS_KEY_ID", b.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", b.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	cfg := config(t, b, "")
	cfg.AccessKey, cfg.SecretKey = "", ""
	s := open(t, cfg)
	put(t, s, []byte("with credentials from the environment"))
}

func TestRedirectURL(t *testing.T) {
	b := testengine.MinIO(t)
	cfg := config(t, b, "p")
	s := open(t, cfg)
	content := []byte("downloaded from the store")
	d := put(t, s, content)
	if u, err := s.RedirectURL(t.Context(), d); u != "" || err != nil {
		t.Errorf("RedirectURL without PresignReads: %q, %v; want \"\", nil", u, err)
	}

	cfg.PresignReads = true
	s = open(t, cfg)
	u, err := s.RedirectURL(t.Context(), d)
	if err != nil {
		t.Fatalf("RedirectURL: %v", err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, content) {
		t.Errorf("GET %s: %s %q, %v", u, resp.Status, got, err)
	}
	if _, err := s.RedirectURL(t.Context(), "nope"); !errors.Is(err, blob.ErrInvalidDigest) {
		t.Errorf("RedirectURL of an invalid digest: got %v, want ErrInvalidDigest", err)
	}
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
