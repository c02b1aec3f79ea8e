FROM busybox
LABEL a=${}
