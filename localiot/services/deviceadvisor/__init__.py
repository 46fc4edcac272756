"""AWS IoT Core Device Advisor's API (iotdeviceadvisor): suite definitions with
their versions (suites.py), suite runs and their records (runs.py, model.py),
the report download (report.py, web.py), the test endpoint (endpoint.py) and
tags (tags.py). The test endpoint and the test cases themselves are the
engine's (localiot.advisor): the API writes a run's record and hands it over."""
