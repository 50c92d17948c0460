# syntax=docker/dockerfile:1
#
# Allot's server in a minimal image: a static binary (CGO_ENABLED=0: the
# SQLite driver, modernc.org/sqlite, is pure Go) on distroless/static, which
# holds CA certificates, time zones and a non-root user and nothing else (no
# shell, no package manager).
#
#   docker build -t allot --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) --build-arg DATE=$(date -u +%FT%TZ) .
#   docker run -p 8080:8080 -v allot-data:/data allot
#
# The database is /data/allot.db on the volume; ALLOT_DB=postgres://...
# uses PostgreSQL instead. docs/operations.md has the rest.

# The server module's go directive asks for Go 1.26.
FROM golang:1.26 AS build
WORKDIR /src
# The server module alone (GOWORK=off): its go.mod points the SDK module at
# ../.. with a replace directive, so bench/ and openfeature/ (and their
# dependencies) stay out of the build.
ENV GOWORK=off CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod ./
COPY cmd/allot/go.mod cmd/allot/go.sum cmd/allot/
WORKDIR /src/cmd/allot
RUN go mod download
WORKDIR /src
COPY . .
WORKDIR /src/cmd/allot
ARG VERSION=""
ARG COMMIT=""
ARG DATE=""
# The build has no .git (see .dockerignore), so the version comes from the
# build arguments; allot version says "(devel)" and "unknown" without them.
RUN go build -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/allot . \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/allot /usr/local/bin/allot
# An empty /data owned by the nonroot user (65532), so that a new named
# volume starts writable by it.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME ["/data"]
ENV ALLOT_DB=/data/allot.db \
    ALLOT_ADDR=:8080
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/allot"]
CMD ["serve"]
