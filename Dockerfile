# localiot in a container, the way local AWS emulators are started:
#   docker build -t localiot .
#   docker run -p 4566:4566 -p 8883:8883 -p 8443:8443 -v localiot-data:/data localiot
# State lives in the /data volume; the broker's certificate also names
# `localhost` and the LOCALIOT_SERVER_NAMES you pass (-e LOCALIOT_SERVER_NAMES=myhost).
FROM python:3.11-slim
WORKDIR /opt/localiot
COPY pyproject.toml requirements.lock README.md ./
COPY localiot ./localiot
RUN pip install --no-cache-dir -c requirements.lock . \
    && useradd --system --home /data localiot && mkdir -p /data && chown localiot /data
USER localiot
ENV LOCALIOT_HOST=0.0.0.0 \
    LOCALIOT_DATA_DIR=/data
VOLUME /data
EXPOSE 4566 8883 8443
CMD ["localiot", "serve"]
