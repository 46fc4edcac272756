"""Fleet indexing, pure parts: the query language (parse, check, evaluate),
the flattened thing document, and aggregations. Nothing here touches the
store or the server; localiot.services.indexing wires it to them."""
