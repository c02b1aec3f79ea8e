FROM busybox
RUN true
ENV A=1
WORKDIR /
LABEL x=y
USER root
RUNN echo typo
