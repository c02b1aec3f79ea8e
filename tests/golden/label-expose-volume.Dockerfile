FROM busybox
LABEL a=1 "b c"=2 multi.line="x \
y"
LABEL legacy label value
EXPOSE 8080 9000-9005/udp
VOLUME ["/var/lib/data"]
VOLUME /a /b
