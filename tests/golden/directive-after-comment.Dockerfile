# a plain comment first
# escape=`
FROM busybox
RUN echo `
RUN echo backslash still escapes \
  this line
