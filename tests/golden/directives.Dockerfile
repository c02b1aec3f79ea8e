# Syntax = docker/dockerfile:1.7
#CHECK=skip=all
# escape=\
# unknownkey=ignored and ends directives
# escape=`
FROM busybox
RUN echo \
  continued with backslash
