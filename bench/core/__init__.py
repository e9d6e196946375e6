"""What every layer shares, defined once: errors, choices and options, the spec -> model path,
atomic file writes."""
