# Static by choice: the pause image of the network sandboxes is then the binary alone
# (a cgo build works too; its image carries the libraries it needs).
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build test unit vet package
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X github.com/ovn-docker/ovn-docker/internal/cli.Version=$(VERSION)" -o bin/ovn-docker ./cmd/ovn-docker
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ovn-docker-cni ./cmd/ovn-docker-cni

unit:
	$(GO) test -race ./...

vet:
	$(GO) vet ./... && $(GO) vet -tags integration ./...

test:
	hack/test.sh

# dist/*.deb and dist/*.rpm (nfpm): binaries, unit, configuration, man pages, completions.
package:
	hack/package.sh
