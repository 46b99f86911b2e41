"""The Anthropic Messages API dialect: it is the canonical shape, so this package validates
requests, encodes stream events and renders errors rather than translating."""
