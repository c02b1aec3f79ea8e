FROM busybox
HEALTHCHECK --interval=soon CMD true
