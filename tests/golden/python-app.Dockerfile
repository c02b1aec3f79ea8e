FROM debian:bookworm
WORKDIR /app
COPY . /app
RUN apt-get update && apt-get install -y python3
ENV NAME work
CMD ["python3", "app.py"]
