FROM busybox
HEALTHCHECK --timeout=10us CMD true
