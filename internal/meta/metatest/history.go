package metatest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/packyard/packyard/internal/meta"
)

// history is a repository whose packages were added and removed in a known
// order, with the sequence number of every step.
type history struct {
	repo  *meta.Repo
	start int64                    // LastSeq before the first step
	seq   map[string]int64         // step name → its sequence number
	pkgs  map[string]*meta.Package // package name → its record as added
}

// newHistory runs these steps, each named after what it does:
//
//	add a, add b, add x (another repository), add c, rm a, add d, rm d,
//	rm c, add a2 (a again, same identity and path)
func newHistory(t *testing.T, s meta.Store) *history {
	h := &history{
		repo: createRepo(t, s, "history"),
		seq:  map[string]int64{},
		pkgs: map[string]*meta.Package{},
	}
	other := createRepo(t, s, "history-other")
	h.start = lastSeq(t, s)
	add := func(name string, repoID int64) {
		p := newPackage(repoID, name, "1.0")
		if name == "a2" {
			p = newPackage(repoID, "a", "1.0")
			p.Fragments["primary"] = []byte("<package>a, again</package>")
		}
		saved := *p
		got := addPackage(t, s, p)
		saved.ID, saved.AddedSeq = got.ID, got.AddedSeq
		h.pkgs[name] = &saved
		h.seq["add "+name] = got.AddedSeq
	}
	rm := func(name string) {
		h.seq["rm "+name] = removePackage(t, s, h.pkgs[name])
	}
	add("a", h.repo.ID)
	add("b", h.repo.ID)
	add("x", other.ID)
	add("c", h.repo.ID)
	rm("a")
	add("d", h.repo.ID)
	rm("d")
	rm("c")
	add("a2", h.repo.ID)
	return h
}

// at returns the sequence number of a step, "start" for the one before the
// first step.
func (h *history) at(step string) int64 {
	if step == "start" {
		return h.start
	}
	seq, ok := h.seq[step]
	if !ok {
		panic(fmt.Sprintf("no step %q", step))
	}
	return seq
}

// testPackageHistory checks PackageChanges, LivePackages and PackageByPath
// over ranges of a known history, and that the three agree.
func testPackageHistory(t *testing.T, s meta.Store) {
	ctx := t.Context()
	h := newHistory(t, s)

	changeCases := []struct {
		from, upTo string
		want       []string // "+name" added, "-name" removed, in order
	}{
		{"start", "add b", []string{"+a", "+b"}},
		{"start", "add c", []string{"+a", "+b", "+c"}},
		{"add b", "add x", nil}, // another repository's change
		{"add c", "rm a", []string{"-a"}},
		{"add c", "add d", []string{"-a", "+d"}},            // d's removal is after upTo
		{"rm a", "rm d", []string{"-d"}},                    // added and removed: once, removed
		{"start", "rm c", []string{"+b", "-a", "-d", "-c"}}, // in order of the reported change
		{"add d", "add a2", []string{"-d", "-c", "+a2"}},    // same identity again
		{"start", "add a2", []string{"+b", "-a", "-d", "-c", "+a2"}},
		{"rm c", "rm c", nil},
		{"add a2", "add a2", nil},
	}
	for _, tc := range changeCases {
		name := fmt.Sprintf("PackageChanges(%s, %s]", tc.from, tc.upTo)
		got, err := s.PackageChanges(ctx, h.repo.ID, h.at(tc.from), h.at(tc.upTo))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var desc []string
		for _, c := range got {
			n := h.name(c.Package.ID)
			if c.Removed {
				desc = append(desc, "-"+n)
				if want := h.at("rm " + n); c.Package.RemovedSeq != want {
					t.Errorf("%s: %s RemovedSeq %d, want %d", name, n, c.Package.RemovedSeq, want)
				}
				continue
			}
			desc = append(desc, "+"+n)
			w := *h.pkgs[n]
			w.RemovedSeq = c.Package.RemovedSeq // removal after upTo: either way
			samePackage(t, name+" "+n, &c.Package, &w, true)
		}
		if !slices.Equal(desc, tc.want) {
			t.Errorf("%s = %q, want %q", name, desc, tc.want)
		}
	}

	liveCases := []struct {
		upTo string
		want []string // in ascending ID order
	}{
		{"start", nil},
		{"add a", []string{"a"}},
		{"add x", []string{"a", "b"}},
		{"add c", []string{"a", "b", "c"}}, // a was live at upTo, though removed now
		{"rm a", []string{"b", "c"}},
		{"add d", []string{"b", "c", "d"}},
		{"rm d", []string{"b", "c"}},
		{"rm c", []string{"b"}},
		{"add a2", []string{"b", "a2"}},
	}
	for _, tc := range liveCases {
		name := fmt.Sprintf("LivePackages(%s)", tc.upTo)
		var got []string
		var lastID int64
		err := s.LivePackages(ctx, h.repo.ID, h.at(tc.upTo), func(p *meta.Package) error {
			n := h.name(p.ID)
			got = append(got, n)
			if p.ID <= lastID {
				t.Errorf("%s: ID %d after %d, want ascending IDs", name, p.ID, lastID)
			}
			lastID = p.ID
			w := *h.pkgs[n]
			w.RemovedSeq = p.RemovedSeq // removal after upTo: either way
			samePackage(t, name+" "+n, p, &w, true)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s = %q, want %q", name, got, tc.want)
		}
	}

	a, c := h.pkgs["a"], h.pkgs["c"]
	byPathCases := []struct {
		path string
		at   string
		want string // package name, "" for ErrNotFound
	}{
		{a.Path, "start", ""},
		{a.Path, "add a", "a"},
		{a.Path, "add c", "a"},
		{a.Path, "rm a", ""},
		{a.Path, "rm c", ""},
		{a.Path, "add a2", "a2"},
		{c.Path, "add b", ""},
		{c.Path, "add c", "c"},
		{c.Path, "add a2", ""},
		{h.pkgs["x"].Path, "add a2", ""}, // another repository's
	}
	for _, tc := range byPathCases {
		name := fmt.Sprintf("PackageByPath(%s, %s)", tc.path, tc.at)
		got, err := s.PackageByPath(ctx, h.repo.ID, tc.path, h.at(tc.at), h.at(tc.at))
		if tc.want == "" {
			if !isNotFound(err) {
				t.Errorf("%s = %v, %v; want ErrNotFound", name, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		w := *h.pkgs[tc.want]
		w.RemovedSeq = got.RemovedSeq
		samePackage(t, name, got, &w, false)
	}
}

func testPackageByPathRange(t *testing.T, s meta.Store) {
	ctx := t.Context()
	h := newHistory(t, s)
	a, c := h.pkgs["a"], h.pkgs["c"]
	cases := []struct {
		path     string
		from, to string
		want     string // package name, "" for ErrNotFound
	}{
		{a.Path, "start", "rm a", "a"},    // visible from "add a" to before "rm a"
		{a.Path, "rm a", "rm c", ""},      // removed at "rm a"
		{a.Path, "add c", "add a2", "a2"}, // a and a2 both: the newest
		{c.Path, "start", "add b", ""},    // not added yet
		{c.Path, "add d", "add a2", "c"},  // removed after "add d"
		{c.Path, "add a2", "add a2", ""},  // removed before
	}
	for _, tc := range cases {
		name := fmt.Sprintf("PackageByPath(%s, %s..%s)", tc.path, tc.from, tc.to)
		got, err := s.PackageByPath(ctx, h.repo.ID, tc.path, h.at(tc.from), h.at(tc.to))
		if tc.want == "" {
			if !isNotFound(err) {
				t.Errorf("%s = %v, %v; want ErrNotFound", name, got, err)
			}
			continue
		}
		if err != nil || got.ID != h.pkgs[tc.want].ID {
			t.Errorf("%s = %v, %v; want %s", name, got, err, tc.want)
		}
	}
}

// name returns the name under which newHistory added package id.
func (h *history) name(id int64) string {
	for n, p := range h.pkgs {
		if p.ID == id {
			return n
		}
	}
	return fmt.Sprintf("unknown package %d", id)
}

func testLivePackagesStops(t *testing.T, s meta.Store) {
	ctx := t.Context()
	r := createRepo(t, s, "stops")
	for _, n := range []string{"a", "b", "c"} {
		addPackage(t, s, newPackage(r.ID, n, "1"))
	}
	errStop := errors.New("stop")
	calls := 0
	err := s.LivePackages(ctx, r.ID, lastSeq(t, s), func(p *meta.Package) error {
		calls++
		if calls == 2 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || calls != 2 {
		t.Errorf("LivePackages with fn failing at the second call: %d calls, %v; want 2, the error of fn", calls, err)
	}
}
