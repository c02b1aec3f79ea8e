FROM busybox
ENV LEGACY value with   spaces
ENV A=1 B=2
ENV QUOTED="a b" SINGLE='c d' ESC=e\ f
ENV EMPTY= NEXT=x
ENV key=value=with=equals
