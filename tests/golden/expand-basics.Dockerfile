# golden-build-arg: GREETING=hi there
FROM busybox
ENV A=/opt B="two words" C='$A literal'
ENV D=${A}/bin E=$A/lib F=\$A G="${B}"
ENV H=${UNSET:-fallback} I=${A:+set} J=${UNSET:+x} K=${EMPTY-unset-default}
ENV EMPTY=
ENV L=${EMPTY:-colon-default} M=${EMPTY-dash-keeps-empty} N=${EMPTY+plus-set}
WORKDIR ${A}/app
ARG GREETING=hello
ARG OTHER=${GREETING}!
LABEL greeting="$GREETING" other=$OTHER
USER ${UNSET:-1000}
VOLUME ["$A/data", "/logs"]
STOPSIGNAL ${SIG:-SIGINT}
RUN echo $A "${B}" '$C'
CMD echo $A
