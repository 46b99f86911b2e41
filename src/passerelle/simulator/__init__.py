"""The built-in offline model: echoes, fixed-length answers, tool calls, pacing and faults."""
