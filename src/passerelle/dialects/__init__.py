"""Wire formats: each dialect's request, response, stream and error shapes, with the
symmetric converters to and from the canonical model.  Used at both edges: inbound routes
speak a dialect to clients, provider adapters speak one to upstreams."""
