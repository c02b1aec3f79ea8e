FROM busybox
FROM scratch
COPY --from=5 /a /a
