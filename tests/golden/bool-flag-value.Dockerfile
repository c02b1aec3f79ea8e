FROM busybox
COPY --link=maybe a /b
