package api

import (
	"errors"
	"net/http"
)

// Kind sorts failures for the caller: the CLI's exit, the CNI's error code.
type Kind string

const (
	KindInvalid     Kind = "invalid"     // the request is wrong: fix it, don't retry
	KindNotFound    Kind = "not_found"   // what it names does not exist
	KindConflict    Kind = "conflict"    // it exists, or is in use
	KindUnavailable Kind = "unavailable" // a service the agent needs does not answer: try again later
	KindDrift       Kind = "drift"       // an interface is no longer what was made (CHECK)
	KindInternal    Kind = "internal"
)

// Error is a failure with its kind; its message is one line for the user.
type Error struct {
	Kind    Kind   `json:"kind"`
	Message string `json:"error"`
	err     error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.err }

// Errorf-like constructors keep the cause for errors.Is.
func wrapKind(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Message: err.Error(), err: err}
}

// Invalid, NotFound, Conflict and Unavailable mark err with a kind.
func Invalid(err error) error     { return wrapKind(KindInvalid, err) }
func NotFound(err error) error    { return wrapKind(KindNotFound, err) }
func Conflict(err error) error    { return wrapKind(KindConflict, err) }
func Unavailable(err error) error { return wrapKind(KindUnavailable, err) }
func Drift(err error) error       { return wrapKind(KindDrift, err) }

// KindOf is err's kind; an error without one is internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) && e.Kind != "" {
		return e.Kind
	}
	return KindInternal
}

func (k Kind) status() int {
	switch k {
	case KindInvalid:
		return http.StatusBadRequest
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict, KindDrift:
		return http.StatusConflict
	case KindUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
