package deb

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/packyard/packyard/internal/format"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
	}{
		{"1.0", Version{"", "1.0", ""}},
		{"1.0-1", Version{"", "1.0", "1"}},
		{"1:1.0-1", Version{"1", "1.0", "1"}},
		{"0:1.0", Version{"0", "1.0", ""}},
		{"1.0-1-2", Version{"", "1.0-1", "2"}},
		{"2:1.0:rc1-0ubuntu1~22.04.1", Version{"2", "1.0:rc1", "0ubuntu1~22.04.1"}},
		{"1.2.3+dfsg~rc1-3+deb12u1", Version{"", "1.2.3+dfsg~rc1", "3+deb12u1"}},
		{"7.0A-b", Version{"", "7.0A", "b"}},
		{"1..", Version{"", "1..", ""}},
		{"2147483647:1", Version{"2147483647", "1", ""}},
		{"0", Version{"", "0", ""}},
	} {
		got, err := ParseVersion(tc.in)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseVersion(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if got.String() != tc.in {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
}

func TestParseVersionErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"1.0 1", "contains whitespace"},
		{" 1.0", "contains whitespace"},
		{"1.0\n", "contains whitespace"},
		{":1.0", "empty epoch"},
		{"a:1.0", `epoch "a" is not a number`},
		{"1..:", `epoch "1.." is not a number`},
		{"-1:1.0", `epoch "-1" is not a number`},
		{"2147483648:1.0", "larger than 2147483647"},
		{"99999999999999999999:1.0", "larger than 2147483647"},
		{"1:", "nothing after the epoch"},
		{"1.0-", "empty revision"},
		{"-1", "empty upstream version"},
		{"1:-1", "empty upstream version"},
		{"a1.0", `upstream version "a1.0" does not start with a digit`},
		{"~1", "does not start with a digit"},
		{"1.0_1", `upstream version "1.0_1" contains '_'`},
		{"1.0é", `contains 'é'`},
		{"1:1.0-1:2", `revision "1:2" contains ':'`},
		{"1.0-1:2", `epoch "1.0-1" is not a number`},
		{"1.0-1_2", `revision "1_2" contains '_'`},
	} {
		_, err := ParseVersion(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseVersion(%q) = %v, want an error containing %q", tc.in, err, tc.want)
			continue
		}
		if !errors.Is(err, ErrInvalidVersion) || !errors.Is(err, format.ErrInvalidPackage) {
			t.Errorf("ParseVersion(%q): %v wraps the wrong errors", tc.in, err)
		}
		if !strings.HasPrefix(err.Error(), "deb: invalid version ") {
			t.Errorf("message %q", err)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	// Each pair is a < b.
	less := [][2]string{
		{"1.0~rc1", "1.0"},
		{"2.0", "1:0.1"},
		{"1.0-1", "1.0-1.1"},
		{"1.0", "1.0a"},
		{"1.0", "1.0+b1"},
		{"2.0-1~bpo", "2.0-1"},
		{"1.0~~", "1.0~"},
		{"1.0~", "1.0"},
		{"1.0~rc1", "1.0~rc2"},
		{"1.0", "1.0.1"},
		{"1.0a", "1.0b"},
		{"1.0Z", "1.0a"},
		{"1.0a", "1.0+"},
		{"1.0+", "1.0."},
		{"1.9", "1.10"},
		{"1.0-1", "1.0-2"},
		{"1.0-9", "1.0-10"},
		{"1.0-1ubuntu1", "1.0-1ubuntu2"},
		{"1.0-1+deb12u1", "1.0-1+deb12u2"},
		{"0:1.0", "1:0"},
		{"9:9", "10:0"},
		{"1:1.0", "2147483647:0"},
		{"1.0", "1.0-0.1"},
		{"1.0-0", "1.0-0.1"},
		{"1.0", "1.0-1"},
		{"1", "1.0"},
		{"0.9", "1"},
		{"1.2.3", "1.2.3a"},
		{"1.2.3-a", "1.2.3-b"},
		{"1.0-1~", "1.0-1"},
		{"1:1.0-1", "1:1.0-1+b1"},
	}
	for _, p := range less {
		if c := CompareVersions(p[0], p[1]); c != -1 {
			t.Errorf("CompareVersions(%q, %q) = %d, want -1", p[0], p[1], c)
		}
		if c := CompareVersions(p[1], p[0]); c != 1 {
			t.Errorf("CompareVersions(%q, %q) = %d, want 1", p[1], p[0], c)
		}
	}
	for _, p := range [][2]string{
		{"1.0", "1.0"},
		{"0:1.0", "1.0"},
		{"00:1.0", "1.0"},
		{"1.0-0", "1.0"},
		{"1.00", "1.0"},
		{"1.001", "1.1"},
		{"1.0-01", "1.0-1"},
	} {
		if c := CompareVersions(p[0], p[1]); c != 0 {
			t.Errorf("CompareVersions(%q, %q) = %d, want 0", p[0], p[1], c)
		}
	}
}

// TestCompareVersionsInvalid checks that invalid input is ordered
// without panicking and consistently.
func TestCompareVersionsInvalid(t *testing.T) {
	vs := []string{"", ":", "a:b", "1:", "-", "--", "~", "ä", "1.0 1", "\x00", "1:2:3", "1.0-", "99999999999999999999999:1", "1.0"}
	for _, a := range vs {
		for _, b := range vs {
			if CompareVersions(a, b) != -CompareVersions(b, a) {
				t.Errorf("CompareVersions(%q, %q) is not antisymmetric", a, b)
			}
		}
	}
	if CompareVersions("99999999999999999999999:1", "9:1") != 1 {
		t.Error("large epochs do not compare as numbers")
	}
}

// versionAlphabet generates versions that exercise every rule of the
// comparison.
func randomVersion(rng *rand.Rand) string {
	piece := func(chars string, n int) string {
		var b strings.Builder
		for range 1 + rng.IntN(n) {
			b.WriteByte(chars[rng.IntN(len(chars))])
		}
		return b.String()
	}
	v := piece("0123456789", 2)
	for range rng.IntN(4) {
		v += piece(".+~abzAZ", 2) + piece("0019", 2)
	}
	if rng.IntN(3) == 0 {
		v += piece("~a", 2)
	}
	if rng.IntN(2) == 0 {
		v += "-" + piece("0123~+.ab", 3)
	}
	if rng.IntN(4) == 0 {
		v = piece("0123", 2) + ":" + v
	}
	return v
}

// TestCompareVersionsWithDpkg checks CompareVersions against dpkg
// --compare-versions on generated pairs.
func TestCompareVersionsWithDpkg(t *testing.T) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		if os.Getenv("PACKYARD_REQUIRE_REAL") == "1" {
			t.Fatalf("dpkg not found and PACKYARD_REQUIRE_REAL=1: %v", err)
		}
		t.Skipf("dpkg not found: %v", err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	n := 300
	if testing.Short() {
		n = 50
	}
	for range n {
		a, b := randomVersion(rng), randomVersion(rng)
		if rng.IntN(5) == 0 {
			b = a
			if rng.IntN(2) == 0 {
				b = strings.Replace(a, "0", "00", 1)
			}
		}
		for _, v := range []string{a, b} {
			if _, err := ParseVersion(v); err != nil {
				t.Fatalf("generated an invalid version: %v", err)
			}
		}
		got := CompareVersions(a, b)
		want := 0
		for _, op := range []struct {
			name string
			c    int
		}{{"lt", -1}, {"gt", 1}} {
			err := exec.Command(dpkg, "--compare-versions", a, op.name, b).Run()
			var exit *exec.ExitError
			switch {
			case err == nil:
				want = op.c
			case errors.As(err, &exit) && exit.ExitCode() == 1:
			default:
				t.Fatalf("dpkg --compare-versions %q %s %q: %v", a, op.name, b, err)
			}
		}
		if got != want {
			t.Errorf("CompareVersions(%q, %q) = %d, dpkg says %d", a, b, got, want)
		}
	}
}
