#!/bin/sh
# Builds freeze v0.2.2 into $(go env GOPATH)/bin. Its pinned wazero (v1.8.0)
# crashes when built with Go 1.26 ("unsafe.Slice: len out of range"), so
# it is built in a scratch module with wazero raised to v1.12.0.
set -eu
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
go mod init freeze-build >/dev/null 2>&1
printf 'package main\n' >main.go
GOFLAGS=-mod=mod go get github.com/charmbracelet/freeze@v0.2.2 github.com/tetratelabs/wazero@v1.12.0 >/dev/null 2>&1
GOFLAGS=-mod=mod go build -o "$(go env GOPATH)/bin/freeze" github.com/charmbracelet/freeze
echo "installed $(go env GOPATH)/bin/freeze"
