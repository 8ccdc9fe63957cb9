#!/usr/bin/env bash
# Runs packyard's whole test suite: formatting, vet, staticcheck, unit,
# conformance, golden (vs createrepo_c, apt-ftparchive and repo-add),
# end-to-end (real dnf, apt and pacman) tests, the PostgreSQL and S3
# backends against a real PostgreSQL and MinIO, and a
# bounded fuzz run. Installs the Debian packages the tests need when they
# are missing. With PACKYARD_REQUIRE_REAL=1 (as .ci/run sets), a test whose
# real client or service is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

export CGO_ENABLED=0
export PATH="$PATH:$(go env GOPATH)/bin"

# Real clients and tools the tests drive: dnf, createrepo_c, rpm/rpmbuild,
# cadaver (WebDAV), curl, gpgv (signature interop), apt-get, dpkg-deb and
# apt-ftparchive (APT), xz (xz stream checks), pacman, repo-add and vercmp
# (pacman-package-manager), makepkg and fakeroot (packages built by the
# real makepkg), bsdtar (libarchive-tools: pacman's archive reader).
missing=()
for pair in dnf:dnf createrepo_c:createrepo-c rpm:rpm rpmbuild:rpm cadaver:cadaver curl:curl gpgv:gpgv \
	apt-get:apt dpkg-deb:dpkg apt-ftparchive:apt-utils xz:xz-utils \
	pacman:pacman-package-manager makepkg:makepkg bsdtar:libarchive-tools fakeroot:fakeroot nginx:nginx-light; do
	cmd=${pair%%:*} pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "installing test dependencies: ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# PostgreSQL for the metadata backend's tests (testengine starts a private
# cluster with initdb and pg_ctl from Debian's postgresql package).
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "installing postgresql"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
# MinIO for the S3 backend's tests, built once into the Go bin directory.
if ! command -v minio >/dev/null 2>&1; then
	echo "installing minio (go install, about two minutes)"
	go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
fi

if ! command -v staticcheck >/dev/null 2>&1; then
	echo "installing staticcheck"
	go install honnef.co/go/tools/cmd/staticcheck@v0.6.1
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
staticcheck ./...
echo "== go test"
go test -count=1 -timeout 25m ./...
echo "== fuzz (bounded)"
# Each target runs a fixed number of executions (about 15 s each on the
# 2-core CI machine) rather than a duration: with a duration, Go 1.26's
# fuzz coordinator can fail a run with "context deadline exceeded" when
# the deadline falls while a worker is busy (go.dev/issue/75804), as a
# worker minimizing a new input is. PACKYARD_FUZZTIME (e.g. 60s or
# 1000000x) overrides every target's budget.
fuzz() {
	local target=$1 budget=$2 pkg=$3
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "${PACKYARD_FUZZTIME:-$budget}" -fuzzminimizetime 5s "$pkg"
}
fuzz FuzzParse 200000x ./internal/format/rpm/
fuzz FuzzReadDeb 300000x ./internal/format/deb/
fuzz FuzzParseParagraph 300000x ./internal/format/deb/
fuzz FuzzXZ 100000x ./internal/format/deb/
fuzz FuzzParsePrivate 60000x ./internal/sign/
fuzz FuzzReadPackage 8000x ./internal/format/arch/
fuzz FuzzParsePkgInfo 400000x ./internal/format/arch/
fuzz FuzzReader 50000x ./internal/format/internal/xzread/
fuzz FuzzReadHeader 200000x ./internal/blobbatch/
fuzz FuzzParse 500000x ./internal/httpfast/
fuzz FuzzUnionDeb 100000x ./internal/proxy/
fuzz FuzzUnionArch 200000x ./internal/proxy/
# Upstream index readers of mirrors (internal/format/upstream).
fuzz FuzzParseRepomd 100000x ./internal/format/upstream/
fuzz FuzzScanPrimary 200000x ./internal/format/upstream/
fuzz FuzzParseRelease 200000x ./internal/format/upstream/
fuzz FuzzScanPackages 200000x ./internal/format/upstream/
fuzz FuzzScanArchDB 100000x ./internal/format/upstream/
echo "all tests passed"
