package docker

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A pull's stream as dockerd writes it (two layers, one already there).
const pullStream = `{"status":"Pulling from library/busybox","id":"latest"}
{"status":"Pulling fs layer","progressDetail":{},"id":"aaa"}
{"status":"Already exists","progressDetail":{},"id":"bbb"}
{"status":"Downloading","progressDetail":{"current":100,"total":400},"id":"aaa"}
{"status":"Downloading","progressDetail":{"current":400,"total":400},"id":"aaa"}
{"status":"Download complete","progressDetail":{},"id":"aaa"}
{"status":"Extracting","progressDetail":{"current":400,"total":400},"id":"aaa"}
{"status":"Pull complete","progressDetail":{},"id":"aaa"}
{"status":"Digest: sha256:abc"}
{"status":"Status: Downloaded newer image for busybox:latest"}
`

func TestFollowPull(t *testing.T) {
	var seen []PullProgress
	last, err := followPull(strings.NewReader(pullStream), func(p PullProgress) { seen = append(seen, p) })
	if err != nil || last != "Status: Downloaded newer image for busybox:latest" {
		t.Fatalf("%q %v", last, err)
	}
	end := seen[len(seen)-1]
	if end != (PullProgress{Layers: 2, Done: 2, Current: 400, Total: 400}) {
		t.Fatalf("at the end: %+v", end)
	}
	if mid := seen[2]; mid.Current != 100 || mid.Total != 400 || mid.Done != 1 {
		t.Fatalf("midway: %+v", mid)
	}
	_, err = followPull(strings.NewReader(`{"status":"Pulling from x"}`+"\n"+`{"errorDetail":{"message":"pull access denied for x"},"error":"pull access denied for x"}`), nil)
	if err == nil || err.Error() != "pull access denied for x" {
		t.Fatalf("in-band error: %v", err)
	}
}

// TestRegistryAuth: the credentials docker login keeps, for the image's registry only.
func TestRegistryAuth(t *testing.T) {
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	cfg := `{"auths":{"registry.example.org:5000":{"auth":"` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	enc, err := RegistryAuth("registry.example.org:5000/team/app:1.0")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.URLEncoding.DecodeString(enc)
	if err != nil {
		t.Fatalf("not base64url: %v", err)
	}
	var got struct{ Username, Password string }
	if err := json.Unmarshal(raw, &got); err != nil || got.Username != "alice" || got.Password != "s3cret" {
		t.Fatalf("%s %v", raw, err)
	}
	if enc, err := RegistryAuth("busybox"); err != nil || enc != "" {
		t.Fatalf("Docker Hub, no credentials: %q %v", enc, err)
	}
}
