"""Function URLs (issue 9): the pure building blocks of AWS Lambda's HTTP endpoints, with no server wiring.

`ids` (url ids, FunctionUrl and the Host parser), `event` (the payload-format-2.0 request event), `response` (a
BUFFERED result to HTTP, and the front end's own error answers), `cors` (preflight and the headers of actual
responses), `streaming` (the HTTP-integration prelude of streamed responses, and InvokeWithResponseStream's event
stream), `javajson` (how AWS's Java front end re-serialises JSON, which the response mapping needs byte for byte).
"""
