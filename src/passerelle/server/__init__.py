"""The HTTP edge: an ASGI application, its routes and the primitives they share."""
