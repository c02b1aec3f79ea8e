FROM busybox
RUN <<EOF
echo one
echo two
EOF
RUN <<EOF
#!/bin/sh
echo from a script
EOF
RUN cat <<EOF > /greeting
hello $USER
EOF
