FROM busybox
ENV SRC=src DST=/app PORTS="80 443" OWNER=1000
COPY --chown=${OWNER}:${OWNER} --chmod=0644 $SRC/a.txt ${SRC}/b.txt $DST/
COPY ["$SRC/with space.txt", "$DST/"]
ADD --checksum=${SUM:-sha256:abc} $SRC/archive.tar.gz $DST
EXPOSE $PORTS 8080/tcp
COPY <<EOF <<'RAW' /etc/
dst is $DST and "quotes" stay
EOF
raw $DST
RAW
