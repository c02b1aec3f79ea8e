FROM busybox
ARG A B=2 C="three four" D=
ARG E=${A:-x}
