package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/packyard/packyard/bench/internal/nginx"
	"github.com/packyard/packyard/bench/internal/server"
)

// The proxies compared, each started fresh (empty cache) under its own
// scratch directory on a free loopback port, in front of an upstream URL.

// engine is one proxy.
type engine struct {
	name string
	// start runs a new instance with an empty cache under dir, in front
	// of the upstream base URL up (with a trailing slash).
	start func(ctx context.Context, dir, up string) (*instance, error)
}

// instance is a running proxy.
type instance struct {
	// base is the upstream repository's root through the proxy, with a
	// trailing slash: base+metaPath is the proxied InRelease.
	base string
	pids func() []int
	stop func()
}

// proxyMaxAge is how long every proxy serves the metadata file before it
// asks the upstream again: longer than any run, so that the warm runs
// measure the cache, as with nginx's proxy_cache_valid.
const proxyMaxAge = time.Hour

// packyardEngine is a deb proxy repository of `packyard serve` (SQLite +
// fs, the defaults).
func packyardEngine(bin string) engine {
	return engine{name: "packyard", start: func(ctx context.Context, dir, up string) (*instance, error) {
		data := filepath.Join(dir, "data")
		if err := os.MkdirAll(data, 0o755); err != nil {
			return nil, err
		}
		s, err := server.Start(bin, data, filepath.Join(dir, "packyard.log"))
		if err != nil {
			return nil, err
		}
		c := server.NewClient(s, "debian", 1)
		// The settings are top-level fields of the repository document,
		// as `packyard repo create` sends them.
		cfg := map[string]any{"upstreams": []string{up}, "max_age": proxyMaxAge.String()}
		if _, err := c.API.CreateRepo(ctx, "debian", "deb", "proxy", cfg); err != nil {
			s.Stop()
			return nil, fmt.Errorf("create the proxy repository: %w", err)
		}
		return &instance{base: s.Base + "/debian/", pids: func() []int { return []int{s.PID()} }, stop: s.Stop}, nil
	}}
}

// nginxCacheEngine is nginx with proxy_cache, set up as for a package
// mirror: cache everything that answered 200 for long, one upstream
// request per missing file (proxy_cache_lock), keep-alive to the upstream,
// one worker per core.
func nginxCacheEngine(bin string) engine {
	return engine{name: "nginx proxy_cache", start: func(ctx context.Context, dir, up string) (*instance, error) {
		addr, err := nginx.FreeAddr()
		if err != nil {
			return nil, err
		}
		u, err := url.Parse(up)
		if err != nil {
			return nil, err
		}
		secs := int(proxyMaxAge.Seconds())
		block := fmt.Sprintf(`
	access_log off;
	proxy_cache_path %[1]s/cache levels=1:2 keys_zone=bench:10m max_size=20g inactive=7d use_temp_path=off;
	upstream mirror {
		server %[2]s;
		keepalive 16;
	}
	server {
		listen %[3]s;
		location = /ready-probe { return 204; }
		location / {
			proxy_pass http://mirror;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_cache bench;
			proxy_cache_valid 200 %[4]ds;
			proxy_cache_lock on;
			proxy_cache_lock_timeout 60s;
			proxy_cache_lock_age 60s;
		}
	}
`, dir, u.Host, addr, secs)
		n, err := nginx.Start(bin, dir, 0, block)
		if err != nil {
			return nil, err
		}
		base := "http://" + addr + "/"
		if err := nginx.WaitHTTP(base+"ready-probe", n.Done, 30*time.Second); err != nil {
			n.Stop()
			return nil, fmt.Errorf("nginx proxy_cache: %w (see %s)", err, dir)
		}
		return &instance{base: base, pids: n.PIDs, stop: n.Stop}, nil
	}}
}

// aptCacherEngine is apt-cacher-ng (the Debian package) in the
// foreground, with a Remap rule that maps /bench/ to the upstream.
// FreshIndexMaxAge is raised to the other proxies' max age, so that it
// serves InRelease from its cache for as long as they do.
func aptCacherEngine(bin string) engine {
	return engine{name: "apt-cacher-ng", start: func(ctx context.Context, dir, up string) (*instance, error) {
		addr, err := nginx.FreeAddr()
		if err != nil {
			return nil, err
		}
		_, port, _ := net.SplitHostPort(addr)
		conf := filepath.Join(dir, "conf")
		for _, d := range []string{conf, filepath.Join(dir, "cache"), filepath.Join(dir, "log")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
		}
		text := fmt.Sprintf(`CacheDir: %[1]s/cache
LogDir: %[1]s/log
SupportDir: /usr/lib/apt-cacher-ng
SocketPath: %[1]s/socket
PidFile: %[1]s/pid
Port: %[2]s
BindAddress: 127.0.0.1
ForeGround: 1
Remap-bench: /bench ; %[3]s
FreshIndexMaxAge: %[4]d
ExThreshold: 4
ReportPage: acng-report.html
`, dir, port, up, int(proxyMaxAge.Seconds()))
		if err := os.WriteFile(filepath.Join(conf, "acng.conf"), []byte(text), 0o644); err != nil {
			return nil, err
		}
		log, err := os.Create(filepath.Join(dir, "stderr"))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-c", conf)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			log.Close()
			return nil, fmt.Errorf("start %s: %w", bin, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait(); log.Close() }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		if err := nginx.WaitHTTP("http://"+addr+"/acng-report.html", done, 30*time.Second); err != nil {
			stop()
			return nil, fmt.Errorf("apt-cacher-ng: %w (see %s)", err, dir)
		}
		return &instance{base: "http://" + addr + "/bench/", pids: func() []int { return []int{cmd.Process.Pid} }, stop: stop}, nil
	}}
}
