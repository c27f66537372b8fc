#!/usr/bin/env bash
# Regenerates the Go code for proto/*.proto. Needs protoc (Debian:
# protobuf-compiler); installs the Go plugins at the versions in go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOBIN="${GOBIN:-$(go env GOPATH)/bin}"
export PATH="$GOBIN:$PATH"
command -v protoc >/dev/null || { echo "genproto: protoc not found (apt-get install -y protobuf-compiler)" >&2; exit 1; }
go install google.golang.org/protobuf/cmd/protoc-gen-go@"$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"
go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
for f in proc host match matchfn; do
  protoc -I proto --go_out=. --go_opt=module=github.com/arena-game/arena \
    --go-grpc_out=. --go-grpc_opt=module=github.com/arena-game/arena "proto/$f.proto"
done
# The seed's Thrift IDL (its Match.add_player), for the --thrift intake.
# Needs thrift (Debian: thrift-compiler).
if command -v thrift >/dev/null; then
  rm -rf proto/matchthrift
  thrift --gen go:package_prefix=github.com/arena-game/arena/proto/,skip_remote,package=matchthrift -out proto proto/thrift/match.thrift
  gofmt -w proto/matchthrift
else
  echo "genproto: thrift not found (apt-get install -y thrift-compiler): proto/matchthrift not regenerated" >&2
fi
echo "genproto: ok"
