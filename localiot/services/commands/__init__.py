"""AWS IoT Device Management commands: one-shot instructions from the cloud to one device.

- `commands.py`: the command resource (CreateCommand, GetCommand,
  UpdateCommand, DeleteCommand, ListCommands), its parameters, value
  conditions and the payload templates of dynamic commands.
- `executions.py`: command executions (iot-jobs-data StartCommandExecution,
  iot GetCommandExecution, ListCommandExecutions, DeleteCommandExecution),
  delivery of the request on `$aws/commands/{things|clients}/{id}/executions/
  {executionId}/request[/{json|cbor}]`, the device's response
  (`update_from_device`, which localiot.doors.commands calls for
  `.../response/{json|cbor}`), the execution events on
  `$aws/events/commandExecution/{commandId}/{status}` and the timer
  (`tick`) that times executions out and finishes pending deletions.
"""
