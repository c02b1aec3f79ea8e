FROM busybox
ONBUILD COPY <<EOF /onbuild.txt
from onbuild
EOF
COPY <<EOF /a
a
EOF
