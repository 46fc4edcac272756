"""Streams, MQTT-based file delivery and OTA updates.

- `streams.py`: CreateStream, DescribeStream, UpdateStream, DeleteStream,
  ListStreams (the STREAM resource; files are S3 locations at the
  downstream endpoint, read when a device asks for them).
- `stream_files.py`: reading stream files from the downstream S3, with the
  cache that lets many devices download the same file.
- `file_delivery.py`: the device protocol of MQTT-based file delivery as a
  pure module (requests, bitmaps, blocks, JSON/CBOR with short keys,
  rejected codes).
- `delivery.py`: what a DescribeStream or GetStream request from a device
  answers (used by localiot/doors/streams.py).
- `ota_updates.py` + `ota_create.py` + `afr_ota.py`: CreateOTAUpdate and its
  CREATE_PENDING -> CREATE_IN_PROGRESS -> CREATE_COMPLETE / CREATE_FAILED
  work, the `afr_ota` job document, GetOTAUpdate, ListOTAUpdates,
  DeleteOTAUpdate.
"""
