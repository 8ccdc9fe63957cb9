package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestRepoConfigNested: settings are taken at the top level of a
// repository document or nested in "config", as GET shows them, so a
// document read back can be sent again; a setting given both ways is a
// 400 that names it, and leaves no repository behind.
func TestRepoConfigNested(t *testing.T) {
	e := newEnv(t, envOptions{})
	type shown struct {
		Config struct {
			Origin string `json:"origin"`
			Label  string `json:"label"`
		} `json:"config"`
	}
	e.call(http.MethodPost, "/api/v1/repos", e.admin,
		[]byte(`{"name":"nested","format":"deb","label":"Top","config":{"origin":"Example"}}`)).
		want(t, http.StatusCreated, "create with nested config")
	got := decodeJSON[shown](t, e.get("/api/v1/repos/nested").want(t, http.StatusOK, "show"))
	if got.Config.Origin != "Example" || got.Config.Label != "Top" {
		t.Errorf("config after create = %+v, want origin Example and label Top", got.Config)
	}

	// Send back what GET showed, with one setting changed.
	doc := e.get("/api/v1/repos/nested").body
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	m["config"] = json.RawMessage(`{"origin":"Changed","label":"Top"}`)
	for _, k := range []string{"name", "format", "kind"} {
		delete(m, k)
	}
	body, _ := json.Marshal(m)
	e.call(http.MethodPatch, "/api/v1/repos/nested", e.admin, body).want(t, http.StatusOK, "PATCH with a document read back")
	got = decodeJSON[shown](t, e.get("/api/v1/repos/nested").want(t, http.StatusOK, "show"))
	if got.Config.Origin != "Changed" {
		t.Errorf("origin after PATCH = %q, want Changed", got.Config.Origin)
	}

	r := e.call(http.MethodPost, "/api/v1/repos", e.admin,
		[]byte(`{"name":"both","format":"deb","origin":"A","config":{"origin":"B"}}`)).
		want(t, http.StatusBadRequest, "a setting given twice")
	if msg, _ := r.apiErr(t); !strings.Contains(msg, "origin") {
		t.Errorf("error %q does not name the setting", msg)
	}
	e.get("/api/v1/repos/both").want(t, http.StatusNotFound, "the refused repository")
	e.call(http.MethodPost, "/api/v1/repos", e.admin,
		[]byte(`{"name":"bad","format":"deb","config":["origin"]}`)).
		want(t, http.StatusBadRequest, "config that is not an object")
}
