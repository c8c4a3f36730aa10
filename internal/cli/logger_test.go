package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ovn-docker/ovn-docker/internal/osauth"
)

// TestLogFormatJSON: --log-format json gives one JSON object per line, redacted like
// the text logs (message, string values and errors).
func TestLogFormatJSON(t *testing.T) {
	red := &osauth.Redactor{}
	red.Add("s3cr3t-token")
	var b bytes.Buffer
	log, err := newLogger(&b, "info", "json", red)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("auth with s3cr3t-token", "cred", "s3cr3t-token", "err", errors.New("bad s3cr3t-token"), "vlan", 7)
	log.Debug("not shown")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line, got %q", b.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	if rec["level"] != "INFO" || rec["vlan"] != float64(7) || rec["msg"] == nil {
		t.Fatalf("record: %v", rec)
	}
	if strings.Contains(b.String(), "s3cr3t") {
		t.Fatalf("secret in the log: %s", b.String())
	}
	if _, err := newLogger(&b, "info", "xml", red); err == nil || err.Error() != `--log-format "xml": use text or json` {
		t.Fatalf("--log-format xml: %v", err)
	}
}
