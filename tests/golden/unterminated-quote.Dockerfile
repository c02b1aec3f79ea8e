FROM busybox
LABEL a="open
