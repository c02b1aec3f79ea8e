FROM busybox
USER ${WHO:?must be set}
