package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packyard/packyard/internal/config"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "packyard.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigUnknownKey(t *testing.T) {
	tests := []struct {
		name, body, key string
	}{
		{"top level", "listen = \":9000\"\nmax_uplod_size = \"1GiB\"\n", "max_uplod_size"},
		{"table", "data = \"/srv\"\n[tls]\ncert = \"x\"\n", "tls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			err := config.LoadFile(&c, writeConfig(t, tc.body))
			if err == nil {
				t.Fatalf("unknown key %s accepted", tc.key)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q does not name the unknown key %s", err, tc.key)
			}
		})
	}
}

func TestConfigBadValues(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"bad size", `max_upload_size = "lots"`, "lots"},
		{"bad duration", `generation_grace = "a day"`, "generation_grace"},
		{"wrong type", `keep_generations = "three"`, "keep_generations"},
		{"not toml", `listen = `, "packyard.toml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			err := config.LoadFile(&c, writeConfig(t, tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadFile: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	if err := config.LoadFile(new(config.Server), filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Errorf("a missing config file loaded")
	}
}

// TestConfigPrecedence loads settings the way serve does: defaults, then the
// file, then the environment, then flags; each later source wins.
func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, `
data = "/from/file"
listen = "127.0.0.1:1111"
log_level = "debug"
max_upload_size = "1GiB"
generation_grace = "2h"
keep_generations = 5
base_url = "https://file.example.com"
`)
	c := config.Default()
	if err := config.LoadFile(&c, file); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PACKYARD_LISTEN":           "127.0.0.1:2222",
		"PACKYARD_MAX_UPLOAD_SIZE":  "512MiB",
		"PACKYARD_KEEP_GENERATIONS": "7",
		"PACKYARD_ADMIN_TOKEN":      "pky_from_env",
		"PACKYARD_BASE_URL":         "https://env.example.com",
	}
	if err := config.LoadEnv(&c, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}

	cmd := newServeCmd()
	if err := cmd.Flags().Parse([]string{"--listen", "127.0.0.1:3333", "--max-upload-size", "10MiB", "--body-idle-timeout", "5s"}); err != nil {
		t.Fatal(err)
	}
	if err := applyFlags(cmd.Flags(), &c); err != nil {
		t.Fatal(err)
	}

	checks := []struct {
		name      string
		got, want any
	}{
		{"data (file only)", c.Data, "/from/file"},
		{"log_level (file only)", c.LogLevel, "debug"},
		{"generation_grace (file only)", c.GenerationGrace.Duration, 2 * time.Hour},
		{"keep_generations (env over file)", c.KeepGenerations, 7},
		{"base_url (env over file)", c.BaseURL, "https://env.example.com"},
		{"admin_token (env only)", c.AdminToken, "pky_from_env"},
		{"listen (flag over env over file)", c.Listen, "127.0.0.1:3333"},
		{"max_upload_size (flag over env over file)", c.MaxUploadSize, config.Size(10 << 20)},
		{"body_idle_timeout (flag only)", c.BodyIdleTimeout.Duration, 5 * time.Second},
		{"log_format (default)", c.LogFormat, "auto"},
		{"shutdown_timeout (default)", c.ShutdownTimeout.Duration, 30 * time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestConfigEnvErrors(t *testing.T) {
	tests := map[string]string{
		"PACKYARD_MAX_UPLOAD_SIZE":  "huge",
		"PACKYARD_KEEP_GENERATIONS": "many",
		"PACKYARD_IDLE_TIMEOUT":     "forever",
	}
	for k, v := range tests {
		c := config.Default()
		err := config.LoadEnv(&c, func(name string) string {
			if name == k {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v, want an error naming the variable", k, v, err)
		}
	}
}

func TestConfigFlagErrors(t *testing.T) {
	c := config.Default()
	cmd := newServeCmd()
	if err := cmd.Flags().Parse([]string{"--max-upload-size", "big"}); err != nil {
		t.Fatal(err)
	}
	if err := applyFlags(cmd.Flags(), &c); err == nil || !strings.Contains(err.Error(), "big") {
		t.Errorf("--max-upload-size big: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	c := config.Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	c.LogLevel = "loud"
	c.KeepGenerations = 0
	c.MaxUploadSize = 0
	c.DefaultKeyAlgorithm = "dsa1024"
	c.ReadCacheSize = -1
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid configuration validated")
	}
	for _, want := range []string{"log_level", "keep_generations", "max_upload_size", "default_key_algorithm", "read_cache_size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not name %s", err, want)
		}
	}
}

// TestServeRejectsBadConfig runs `packyard serve` with a configuration that
// must not start a server.
func TestServeRejectsBadConfig(t *testing.T) {
	t.Setenv("PACKYARD_CONFIG", "")
	file := writeConfig(t, "listen = \"127.0.0.1:0\"\nbogus_key = 1\n")
	r := runCLI(t, "serve", "--config", file)
	if r.err == nil || !strings.Contains(r.err.Error(), "bogus_key") {
		t.Errorf("serve with an unknown key: %v", r.err)
	}
	t.Setenv("PACKYARD_LOG_LEVEL", "loud")
	r = runCLI(t, "serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0")
	if r.err == nil || !strings.Contains(r.err.Error(), "log_level") {
		t.Errorf("serve with PACKYARD_LOG_LEVEL=loud: %v", r.err)
	}
}

// TestReadCacheSizeByStore: the read cache takes files up to an eighth of
// read_cache_size for a remote blob store; for a file store (whose larger
// files go out with sendfile) pointer-sized files only, in at most 32 MiB;
// read_cache_size 0 turns it off for both.
func TestReadCacheSizeByStore(t *testing.T) {
	c := config.Default()
	c.Data = t.TempDir()
	if got, file := readCacheSize(c), readCacheMaxFile(c); got != 32<<20 || file != 64<<10 {
		t.Errorf("file store: read cache %d bytes, files up to %d; want 32 MiB, 64 KiB", got, file)
	}
	c.Blobs = "s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1"
	if got, file := readCacheSize(c), readCacheMaxFile(c); got != 128<<20 || file != 0 {
		t.Errorf("S3 store: read cache %d bytes, files up to %d; want the default 128 MiB, the cache's default bound", got, file)
	}
	c.ReadCacheSize = 0
	if got := readCacheSize(c); got != 0 {
		t.Errorf("S3 store with read_cache_size 0: read cache %d bytes, want 0", got)
	}
	c.Blobs = ""
	if got := readCacheSize(c); got != 0 {
		t.Errorf("file store with read_cache_size 0: read cache %d bytes, want 0", got)
	}
}
