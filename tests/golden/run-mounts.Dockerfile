FROM golang:1.22 AS deps
FROM debian:bookworm AS build
RUN --mount=type=cache,target=/root/.cache/go-build,sharing=locked,id=gocache \
    --mount=type=bind,from=deps,source=/go/pkg,target=/go/pkg \
    --mount=type=tmpfs,target=/tmp,size=64m \
    --mount=type=secret,id=npmrc,target=/root/.npmrc,required \
    --mount=type=cache,target=/var/cache/apt,uid=0,gid=0,mode=0755 \
    --network=none --security=sandbox \
    go build ./...
RUN --mount=target=/src,rw make
RUN --mount=type=bind,from=alpine:3,target=/alpine ls /alpine
RUN --mount=type=cache,target=$CACHE_DIR true
