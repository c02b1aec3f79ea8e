FROM busybox
ENV STR=foobarbaz PATHV=/usr/local/bin/tool.tar.gz
ENV A=${STR#f*b} B=${STR##f*b} C=${STR%b*} D=${STR%%b*}
ENV E=${STR/ba/fo} F=${STR//ba/fo} G=${PATHV##*/} H=${PATHV%.tar.gz}
