"""AWS IoT Fleet Hub (iotfleethub): web applications over the fleet index.

The API (applications.py, tags.py) keeps application documents; each
application's URL is served by localiot itself (localiot.fleethub_web)."""
