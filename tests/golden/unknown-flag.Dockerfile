FROM busybox
COPY --foo=bar a /b
