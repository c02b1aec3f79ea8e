FROM busybox
RUN ["cat", "<<EOF"]
CMD <<EOF
