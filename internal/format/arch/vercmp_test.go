package arch_test

import (
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/packyard/packyard/internal/format/arch"
)

// vercmpCases are ordered pairs: Vercmp(a, b) must be want and
// Vercmp(b, a) -want.
var vercmpCases = []struct {
	a, b string
	want int
}{
	{"1.0-1", "1.0-2", -1},
	{"1:1.0", "2.0", 1},
	{"1.0a", "1.0", -1},
	{"1.0.1", "1.0b", 1},
	{"1.0", "1.0-1", 0},
	{"1.0-1", "1.0-1", 0},
	{"1.0", "1.0", 0},
	{"1.0", "1.0.0", -1},
	{"1.0a", "1.0b", -1},
	{"1.0b", "1.0", -1},
	{"1.0", "1.0.1", -1},
	{"1.0.1", "1.0.2", -1},
	{"1.0.10", "1.0.9", 1},
	{"1.0.010", "1.0.10", 0},
	{"1.0alpha", "1.0beta", -1},
	{"1.0rc1", "1.0", -1},
	{"1.0", "1.0.a", -1}, // a trailing letter run is older than the end, after a separator too
	{"1.0.a", "1.0.1", -1},
	{"1..0", "1.0", 1}, // a longer separator is newer
	{"1_0", "1.0", 0},  // separators count only by length
	{"1.0~rc1", "1.0", 1},
	{"a", "1", -1},
	{"1", "a", 1},
	{"0:1.0-1", "1.0-1", 0},
	{":1.0", "1.0", 0}, // an empty epoch is 0
	{"1:0.1", "0:9.9", 1},
	{"2:1.0", "10:1.0", -1},
	{"1.0-1.1", "1.0-1", 1},
	{"1.0-1", "1.0-", 1},
	{"1.0-2", "1.0", 0},
	{"1.2.3-1", "1.2.3-10", -1},
	{"20240101", "2024.01.01", 1},
	{"1.0.r12.gabcdef", "1.0.r9.gffff", 1},
	{"1.0+git", "1.0", 1}, // what is left starts with a separator, not a letter
	{"1.0", "1.0+", -1},
	{"", "", 0},
	{"", "1", -1},
	{"1", "", 1},
	{"é", "1", -1},
	{"1é", "1", 1},
	{"-", "", 0}, // an empty release is only compared with another
	{"1:", "0", 1},
	{"99999999999999999999999", "99999999999999999999998", 1},
	{"000001", "1", 0},
}

func TestVercmp(t *testing.T) {
	for _, c := range vercmpCases {
		if got := arch.Vercmp(c.a, c.b); got != c.want {
			t.Errorf("Vercmp(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := arch.Vercmp(c.b, c.a); got != -c.want {
			t.Errorf("Vercmp(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// randomVersion returns a version made of the pieces that make vercmp
// interesting: epochs (also empty), digit runs with leading zeros,
// letter runs, separators of one or two characters, releases (also
// empty), and now and then a byte that is not ASCII.
func randomVersion(rng *rand.Rand) string {
	var b strings.Builder
	switch rng.IntN(6) {
	case 0:
		b.WriteString(strconv.Itoa(rng.IntN(3)) + ":")
	case 1:
		b.WriteString(":")
	}
	seps := []string{".", ".", ".", "_", "+", "~", "..", "é"}
	letters := []string{"a", "b", "rc", "alpha", "beta", "pre", "git", "A", "r"}
	n := 1 + rng.IntN(4)
	for i := range n {
		if i > 0 || rng.IntN(8) == 0 {
			b.WriteString(seps[rng.IntN(len(seps))])
		}
		if rng.IntN(3) == 0 {
			b.WriteString(letters[rng.IntN(len(letters))])
		} else {
			b.WriteString(strings.Repeat("0", rng.IntN(2)) + strconv.Itoa(rng.IntN(12)))
		}
		if rng.IntN(6) == 0 {
			b.WriteString(letters[rng.IntN(len(letters))])
		}
	}
	switch rng.IntN(5) {
	case 0, 1:
		b.WriteString("-" + strconv.Itoa(1+rng.IntN(3)))
	case 2:
		b.WriteString("-" + strconv.Itoa(1+rng.IntN(2)) + "." + strconv.Itoa(rng.IntN(2)))
	case 3:
		if rng.IntN(4) == 0 {
			b.WriteString("-")
		}
	}
	return b.String()
}

// TestVercmpTool compares Vercmp with pacman's vercmp program on the
// table and on generated pairs, many of them close to each other.
func TestVercmpTool(t *testing.T) {
	tool := realProgram(t, "vercmp")
	rng := rand.New(rand.NewPCG(11, 12))
	type pair struct{ a, b string }
	var pairs []pair
	for _, c := range vercmpCases {
		pairs = append(pairs, pair{c.a, c.b})
	}
	for len(pairs) < 400 {
		a := randomVersion(rng)
		b := randomVersion(rng)
		if rng.IntN(2) == 0 {
			// A near miss: the same version with one change.
			b = a
			switch rng.IntN(3) {
			case 0:
				b += randomVersion(rng)[:1]
			case 1:
				if len(b) > 1 {
					b = b[:len(b)-1]
				}
			case 2:
				b = strings.Replace(b, ".", "_", 1)
			}
		}
		pairs = append(pairs, pair{a, b})
	}
	for _, p := range pairs {
		out, err := exec.Command(tool, p.a, p.b).Output()
		if err != nil {
			t.Fatalf("vercmp %q %q: %v", p.a, p.b, err)
		}
		want, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("vercmp %q %q printed %q", p.a, p.b, out)
		}
		if got := arch.Vercmp(p.a, p.b); got != want {
			t.Errorf("Vercmp(%q, %q) = %d, vercmp says %d", p.a, p.b, got, want)
		}
	}
}

func FuzzVercmp(f *testing.F) {
	for _, c := range vercmpCases {
		f.Add(c.a, c.b)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		x, y := arch.Vercmp(a, b), arch.Vercmp(b, a)
		if x != -y || x < -1 || x > 1 {
			t.Fatalf("Vercmp(%q, %q) = %d, reversed %d", a, b, x, y)
		}
		if arch.Vercmp(a, a) != 0 {
			t.Fatalf("Vercmp(%q, itself) != 0", a)
		}
	})
}
