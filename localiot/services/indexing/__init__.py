"""Fleet indexing: configuration, the index kept in the store, SearchIndex,
aggregations, dynamic thing groups and fleet metrics. The query language
itself is the pure package localiot.indexing."""
