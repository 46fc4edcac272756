"""AWS IoT SQL: the language of topic rules (AWS IoT Developer Guide, "AWS IoT SQL reference").

    from localiot.iotsql import parse, EvalContext

    query = parse("SELECT temp, topic(2) AS device FROM 'sensors/+' WHERE temp > 30",
                  version="2016-03-23")                 # SqlParseError if invalid
    query.topic_filter                                   # 'sensors/+'
    query.matches_topic("sensors/kitchen")               # True
    results = query.evaluate(b'{"temp": 31}', EvalContext(topic="sensors/kitchen"))
    results[0].value, results[0].to_payload()            # {'temp': 31, 'device': 'kitchen'}, b'{...}'

    substitute("${topic(2)}/alerts", context, payload)   # substitution templates (templates.py)

Evaluation failures (a missing hook, an unsupported function, a binary payload
used as JSON) raise SqlEvaluationError. Pure Python: all I/O goes through
the hooks of EvalContext.
"""

from localiot.iotsql.context import EvalContext
from localiot.iotsql.errors import EvaluationError, SqlEvaluationError, SqlParseError
from localiot.iotsql.nodes import BETA, V1, V2, VERSIONS
from localiot.iotsql.query import DEFAULT_VERSION, Query, Result, parse
from localiot.iotsql.templates import Template, parse_template, substitute
from localiot.iotsql.values import UNDEFINED

SQL_VERSIONS = VERSIONS

__all__ = [
    "BETA",
    "DEFAULT_VERSION",
    "SQL_VERSIONS",
    "UNDEFINED",
    "V1",
    "V2",
    "EvalContext",
    "EvaluationError",
    "Query",
    "Result",
    "SqlEvaluationError",
    "SqlParseError",
    "Template",
    "parse",
    "parse_template",
    "substitute",
]
