"""AWS IoT logging options: v1 (Get/SetLoggingOptions), v2 (Get/SetV2LoggingOptions)
and resource-specific v2 log levels (Set/List/DeleteV2LoggingLevel).

Other modules ask `levels.level_for(tx, ...)` which log level applies to a
client; nothing here writes log entries.
"""
