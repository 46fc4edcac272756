"""The iot-data plane (AWS IoT Data, signing name `iotdata`): device shadows
over HTTP, calling the same shadow service as the broker's shadow topics."""
