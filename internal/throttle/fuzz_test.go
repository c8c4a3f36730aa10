package throttle

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzConflictBody: the reading of a 409's body never panics, and leaves the body whole
// for the caller.
func FuzzConflictBody(f *testing.F) {
	f.Add([]byte(`{"NeutronError": {"type": "StaleDataError", "message": "x"}}`))
	f.Add([]byte(`{"NeutronError": 1}`))
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := &http.Response{StatusCode: 409, Body: io.NopCloser(bytes.NewReader(body))}
		_ = concurrentUpdate(resp)
		got, _ := io.ReadAll(resp.Body)
		if !bytes.Equal(got, body) {
			t.Fatal("the body was consumed")
		}
	})
}
