"""How an invocation ends, in AWS's words: a runtime that exited (RAPID's wording), and a streamed response's end
turned into the invocation's final outcome.

A streamed response (`runtime_api/streaming.py`) ends one of five ways; the invocation's final outcome carries that
end to whoever delivers the response (InvokeWithResponseStream's InvokeComplete, a buffered Invoke's
X-Amz-Function-Error, the REPORT line): a completed stream is no function error; the runtime's error trailers, a
response over the size limit, a body cut short and an abort (the environment's timeout, crash or stop) are
`Unhandled`, with the error type and body the stream recorded.
"""
from __future__ import annotations

import signal

from lamina.model.invocation import InvocationOutcome
from lamina.runtime_api.streaming import ResponseStream, StreamEnd, StreamOutcome

_SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
    signal.SIGILL: "illegal instruction",
    signal.SIGFPE: "floating point exception",
}


def exit_message(request_id: str, returncode: int) -> str:
    """AWS's (RAPID's) wording for a runtime that exited during an invocation."""
    if returncode == 0:
        reason = "Runtime exited without providing a reason"
    elif returncode < 0:
        name = _SIGNAL_NAMES.get(signal.Signals(-returncode), signal.Signals(-returncode).name.lower())
        reason = f"Runtime exited with error: signal: {name}"
    else:
        reason = f"Runtime exited with error: exit status {returncode}"
    return f"RequestId: {request_id} Error: {reason}"


def stream_result(stream: ResponseStream, outcome: StreamOutcome) -> InvocationOutcome:
    """The final outcome of an invocation whose response was `stream`, once it ended with `outcome`. Its payload is
    empty for a completed stream (the bytes went to the reader as they came) and the error body otherwise."""
    if outcome.end is StreamEnd.COMPLETED:
        return InvocationOutcome(b"", stream.content_type, stream=stream)
    return InvocationOutcome(
        outcome.error_body, "application/json", "Unhandled", stream=stream, error_type=outcome.error_type
    )
