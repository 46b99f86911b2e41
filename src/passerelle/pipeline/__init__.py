"""Pipeline stages a request passes between the HTTP route and the router: authentication
now; limits, compliance, skills and cache plug in here in the same shape."""
