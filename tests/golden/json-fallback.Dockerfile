FROM busybox
CMD [ "unterminated", 
RUN ["echo", "exec form"]
RUN ['single', 'quotes']
ENTRYPOINT   ["spaces"]   
