from busybox as Builder
run echo lower
Run echo mixed
FROM builder AS Second
cOpY --from=BUILDER /a /b
