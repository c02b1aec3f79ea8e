

# leading comments
   # indented comment
FROM busybox   
	RUN    echo indented instruction   

# trailing
