FROM busybox
ENTRYPOINT ["echo", "entry"]
CMD ["default", "args"]
FROM busybox AS shellform
ENTRYPOINT echo "from a shell" $HOME
CMD echo not used
FROM busybox AS reset
ENTRYPOINT []
CMD []
