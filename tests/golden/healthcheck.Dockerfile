FROM busybox
HEALTHCHECK NONE
FROM busybox AS shell
HEALTHCHECK --interval=1m30s --timeout=10s --start-period=5s --start-interval=500ms --retries=3 \
  CMD curl -f http://localhost/ || exit 1
FROM busybox AS exec
HEALTHCHECK CMD ["wget", "-q", "-O-", "http://localhost/"]
