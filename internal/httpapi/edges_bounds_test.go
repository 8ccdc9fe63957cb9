package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestEdgeHeartbeatBounds: a heartbeat records only the repositories the
// origin has: names an edge token makes up (or mistypes) are ignored, so
// they fill neither the store nor /metrics; too many names or too large a
// body are refused.
func TestEdgeHeartbeatBounds(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.createRepo("el")
	edge := e.token("edge-1", "edge")
	beat := func(body string) response {
		return e.call(http.MethodPost, "/api/v1/edges/edge-1/heartbeat", edge, []byte(body))
	}
	beat(`{"version":"1.0","repos":{"el":0,"gone":3,"../../etc":1,"<script>":2,"EL":1}}`).want(t, http.StatusOK, "heartbeat")
	list := decodeJSON[[]edgeAnswer](t, e.call(http.MethodGet, "/api/v1/edges", e.admin, nil).want(t, http.StatusOK, "edge list"))
	if len(list) != 1 || len(list[0].Repos) != 1 {
		t.Fatalf("edges = %+v; want edge-1 with el only", list)
	}
	if _, ok := list[0].Repos["el"]; !ok {
		t.Errorf("edge-1 repos = %+v; want el", list[0].Repos)
	}
	m := string(e.get("/metrics").want(t, http.StatusOK, "metrics").body)
	for _, bad := range []string{`repo="gone"`, `repo="../../etc"`, `repo="<script>"`, `repo="EL"`} {
		if strings.Contains(m, bad) {
			t.Errorf("/metrics names %q", bad)
		}
	}

	var many strings.Builder
	many.WriteString(`{"repos":{`)
	for i := range 10001 {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `"r%d":1`, i)
	}
	many.WriteString("}}")
	beat(many.String()).want(t, http.StatusBadRequest, "10001 repositories")
	beat(`{"version":"`+strings.Repeat("x", 1<<20)+`"}`).want(t, http.StatusBadRequest, "a body over 1 MiB")
}
