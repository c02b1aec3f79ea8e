FROM busybox
ONBUILD ADD . /app/src
ONBUILD RUN cd /app/src && make
onbuild run <<EOF
echo trigger heredoc
EOF
