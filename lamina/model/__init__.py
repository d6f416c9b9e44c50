"""The records every layer shares (functions, aliases, layers, invocations) and ARN parsing: imported by all, importing
nothing of Lamina but its errors."""
