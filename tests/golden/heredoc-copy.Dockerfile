FROM busybox
ARG NAME=world
COPY <<EOF /etc/greeting
hello ${NAME}
EOF
COPY --chmod=755 <<"EOF" <<'END' /usr/local/bin/
#!/bin/sh
echo $1
EOF
literal $NAME
END
