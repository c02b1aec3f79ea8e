FROM busybox
ENV --x=1 A=b
