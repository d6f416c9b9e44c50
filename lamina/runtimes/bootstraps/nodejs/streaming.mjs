/**
 * Response streaming as aws-lambda-ric 3.3.0 offers it: the global `awslambda` ({streamifyResponse,
 * HttpResponseStream}), and the response stream a streamified handler gets as its second argument.
 *
 * The stream is a Writable facade (the same methods and properties the RIC exposes) over a chunked
 * `POST /runtime/invocation/{id}/response` with `Lambda-Runtime-Function-Response-Mode: streaming`: the head leaves
 * with the first write (so `setContentType` works until then), every write is one chunk sent at once, `end()` sends
 * the last chunk, and a failure is reported in the `Lambda-Runtime-Function-Error-Type` / `-Error-Body` (base64 of
 * the error JSON) trailers. Like the RIC's http.request it runs on a connection of its own (kept alive between
 * invocations, referenced only while a response is open), so an `/error` post or the next `GET /next` never has to
 * wait behind a stream, and a destroyed stream cuts only its own request.
 *
 * Mirrored quirks of the RIC: `HttpResponseStream.from`'s prelude is written by the first `write()` (not by
 * `end(data)`), a chunk that is not a string, Buffer or Uint8Array is sent as its JSON, and a handler that never ends
 * its stream keeps the invocation open until it times out.
 */
import net from "node:net";
import { Writable } from "node:stream";
import { InvalidStreamingOperation, MalformedStreamingHandler, toRapidResponse } from "./errors.mjs";

const PREFIX = "/2018-06-01/runtime/";
const USER_AGENT = `aws-lambda-nodejs/${process.version}-lamina`;
const HANDLER_STREAMING = Symbol.for("aws.lambda.runtime.handler.streaming");
const HANDLER_HIGHWATERMARK = Symbol.for("aws.lambda.runtime.handler.streaming.highWaterMark");
const STREAM_RESPONSE = "response";
const DEFAULT_CONTENT_TYPE = "application/octet-stream";
const METADATA_PRELUDE_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response";
const DELIMITER_LEN = 8;
const TRAILER_NAME_ERROR_TYPE = "Lambda-Runtime-Function-Error-Type";
const TRAILER_NAME_ERROR_BODY = "Lambda-Runtime-Function-Error-Body";
const CRLF = Buffer.from("\r\n");
const STATUS_READY = "ready";
const STATUS_WRITE_CALLED = "write_called";

/** Header and trailer values stay one line of ASCII. */
function asciiHeader(value) {
  return String(value).replace(/[^\x20-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

// -- awslambda ----------------------------------------------------------------------------------------------------
export class HttpResponseStream {
  /** Implements the application/vnd.awslambda.http-integration-response content type: JSON prelude, 8 NUL bytes. */
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType(METADATA_PRELUDE_CONTENT_TYPE);
    const metadataPrelude = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadataPrelude);
      write(new Uint8Array(DELIMITER_LEN));
    };
    return underlyingStream;
  }
}

/** Sets the global `awslambda` before the function's code loads, unless AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA. */
export function installAwsLambdaGlobal() {
  const opt = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (opt === "1" || opt === "true") {
    return;
  }
  globalThis.awslambda = {
    streamifyResponse: (handler, options) => {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === "number") {
        handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark);
      }
      return handler;
    },
    HttpResponseStream,
  };
}

/** {streaming, highWaterMark} of a loaded handler; throws Runtime.MalformedStreamingHandler as the RIC does. */
export function handlerMetadata(handler) {
  const mode = handler[HANDLER_STREAMING];
  let streaming = false;
  if (mode !== undefined && mode !== null && mode !== false) {
    if (mode !== STREAM_RESPONSE) {
      throw new MalformedStreamingHandler("Only response streaming is supported.");
    }
    streaming = true;
  }
  const mark = handler[HANDLER_HIGHWATERMARK];
  const highWaterMark = mark === undefined || mark === null || mark === false ? undefined : parseInt(mark);
  return { streaming, highWaterMark: Number.isNaN(highWaterMark) ? undefined : highWaterMark };
}

// -- the connection streamed responses travel on ------------------------------------------------------------------
/** One keep-alive socket to the Runtime API for streamed responses; a new one after it closed. */
export class StreamConnection {
  constructor(address) {
    const colon = address.lastIndexOf(":");
    this.host = address;
    this.hostname = address.slice(0, colon).replace(/^\[|\]$/g, "");
    this.port = Number(address.slice(colon + 1));
    this.socket = null;
  }

  /** The socket for one response, referenced until `answer` settles. */
  open() {
    if (this.socket === null || this.socket.destroyed || this.socket.laminaDone) {
      const socket = net.connect({ host: this.hostname, port: this.port });
      socket.setNoDelay(true);
      socket.chunks = [];
      socket.size = 0;
      socket.waiter = null;
      socket.laminaDone = false; // the server closes (or half-closes) it: never reused
      socket.on("data", (chunk) => this.onData(socket, chunk));
      socket.on("end", () => {
        socket.laminaDone = true;
      });
      socket.on("error", () => {}); // "close" follows: the pending answer is rejected there
      socket.on("close", () => {
        if (this.socket === socket) {
          this.socket = null;
        }
        socket.waiter?.reject(new Error("lost the Runtime API connection of the response stream"));
        socket.waiter = null;
      });
      this.socket = socket;
    }
    const socket = this.socket;
    socket.ref();
    const answer = new Promise((resolve, reject) => {
      socket.waiter = { resolve, reject };
    });
    answer.then(
      () => socket.unref(),
      () => {},
    );
    return { socket, answer };
  }

  /** Lamina's Runtime API answers with a Content-Length, never chunked. */
  onData(socket, chunk) {
    socket.chunks.push(chunk);
    socket.size += chunk.length;
    const buffer = socket.chunks.length > 1 ? Buffer.concat(socket.chunks, socket.size) : socket.chunks[0];
    socket.chunks = [buffer];
    const end = buffer.indexOf("\r\n\r\n");
    if (end < 0) {
      return;
    }
    const lines = buffer.toString("latin1", 0, end).split("\r\n");
    let length = 0;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).trim().toLowerCase();
      if (name === "content-length") {
        length = Number(line.slice(colon + 1).trim());
      } else if (name === "connection" && line.slice(colon + 1).trim().toLowerCase() === "close") {
        socket.laminaDone = true;
      }
    }
    if (buffer.length < end + 4 + length) {
      return;
    }
    const rest = buffer.subarray(end + 4 + length);
    socket.chunks = rest.length > 0 ? [rest] : [];
    socket.size = rest.length;
    const waiter = socket.waiter;
    socket.waiter = null;
    waiter?.resolve({ status: Number(lines[0].split(" ")[1]), body: buffer.subarray(end + 4, end + 4 + length) });
  }
}

// -- one response stream ------------------------------------------------------------------------------------------
class ChunkedResponse extends Writable {
  /**
   * `highWaterMark` (streamifyResponse's option) is, as in the RIC, the socket's: how much may wait unsent before
   * a write waits for the socket to flush. The Writable keeps Node's default, as the RIC's request does.
   */
  constructor(connection, id, highWaterMark) {
    super();
    const { socket, answer } = connection.open();
    this.socket = socket;
    this.socketHighWaterMark = highWaterMark;
    this.answered = false;
    this.headSent = false;
    this.contentType = DEFAULT_CONTENT_TYPE;
    this.trailers = null;
    this.path = `${PREFIX}invocation/${encodeURIComponent(id)}/response`;
    this.host = connection.host;
    this.answer = answer.finally(() => {
      this.answered = true;
    });
    this.answer.catch(() => {}); // awaited by the runtime loop, or never (a handler that failed first)
  }

  /** Nothing more can reach the Runtime API: the request was answered (it ended, or was refused) or cut. */
  get gone() {
    return this.answered || this.socket.destroyed;
  }

  head() {
    this.headSent = true;
    return (
      `POST ${this.path} HTTP/1.1\r\nHost: ${this.host}\r\nUser-Agent: ${USER_AGENT}\r\n` +
      `Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n` +
      `Trailer: ${TRAILER_NAME_ERROR_TYPE}, ${TRAILER_NAME_ERROR_BODY}\r\n` +
      `Content-Type: ${asciiHeader(this.contentType)}\r\n\r\n`
    );
  }

  send(pieces, callback) {
    if (this.gone) {
      callback(); // the response is over for the Runtime API: what is still written goes nowhere
      return;
    }
    const socket = this.socket;
    let flushed = false;
    let resume = null;
    const onFlushed = () => {
      flushed = true;
      resume?.();
    };
    socket.cork();
    if (!this.headSent) {
      socket.write(this.head());
    }
    pieces.forEach((piece, index) => socket.write(piece, index === pieces.length - 1 ? onFlushed : undefined));
    socket.uncork();
    const limit = this.socketHighWaterMark ?? socket.writableHighWaterMark;
    if (pieces.length === 0 || flushed || socket.destroyed || socket.writableLength < limit) {
      callback();
      return;
    }
    resume = () => {
      socket.off("close", resume);
      resume = () => {};
      callback();
    };
    socket.on("close", resume); // the write callbacks of a destroyed socket may not all run
  }

  _write(chunk, _encoding, callback) {
    this._writev([{ chunk }], callback);
  }

  _writev(entries, callback) {
    const chunks = entries.map((entry) => entry.chunk).filter((chunk) => chunk.length > 0);
    if (chunks.length === 0) {
      this.send([], callback); // an empty write sends nothing (an empty chunk would end the body), but the head
      return;
    }
    const size = chunks.reduce((total, chunk) => total + chunk.length, 0);
    this.send([Buffer.from(`${size.toString(16)}\r\n`), ...chunks, CRLF], callback);
  }

  _final(callback) {
    let last = "0\r\n";
    if (this.trailers !== null) {
      last += `${TRAILER_NAME_ERROR_TYPE}: ${asciiHeader(this.trailers.type)}\r\n`;
      last += `${TRAILER_NAME_ERROR_BODY}: ${this.trailers.body}\r\n`;
    }
    this.send([last + "\r\n"], () => callback());
  }

  _destroy(error, callback) {
    if (!this.writableFinished && !this.gone) {
      this.socket.destroy(); // the Runtime API sees a truncated response, as when the RIC's request is destroyed
    }
    callback(error);
  }
}

const FACADE_METHODS = [
  "cork", "destroy", "end", "uncork", "write",
  "addListener", "emit", "eventNames", "getMaxListeners", "listenerCount", "listeners", "off", "on", "once",
  "prependListener", "prependOnceListener", "rawListeners", "removeAllListeners", "removeListener",
  "setMaxListeners",
  "setContentType",
];
const FACADE_READ_WRITE = ["destroyed", "writable", "_onBeforeFirstWrite"];
const FACADE_READ_ONLY = [
  "writableFinished", "writableObjectMode", "writableBuffer", "writableEnded", "writableNeedDrain",
  "writableHighWaterMark", "writableCorked", "writableLength",
];

/**
 * Opens the response stream of invocation `id`: {responseStream (what the handler gets), responseDone (settles
 * with the Runtime API's answer), fail(error, callback) (ends the stream with the error in the trailers)}.
 */
export function createResponseStream(connection, id, options = {}) {
  const inner = new ChunkedResponse(connection, id, options.highWaterMark);
  let status = STATUS_READY;
  inner.setContentType = (contentType) => {
    if (status !== STATUS_READY) {
      throw new InvalidStreamingOperation("Cannot set content-type, too late.");
    }
    inner.contentType = contentType;
  };
  const origWrite = inner.write.bind(inner);
  inner.write = function (chunk, encoding, callback) {
    if (typeof chunk !== "string" && !Buffer.isBuffer(chunk) && chunk?.constructor !== Uint8Array) {
      chunk = JSON.stringify(chunk);
    }
    if (status === STATUS_READY && typeof this._onBeforeFirstWrite === "function") {
      this._onBeforeFirstWrite((piece) => origWrite(piece));
    }
    const flowing = origWrite(chunk, encoding, callback);
    status = STATUS_WRITE_CALLED;
    return flowing;
  };
  const origEnd = inner.end.bind(inner);
  inner.end = (callbackOrChunk) => {
    origEnd(callbackOrChunk); // the RIC passes end() one argument on, and returns nothing
  };

  const responseStream = Object.fromEntries(FACADE_METHODS.map((name) => [name, inner[name].bind(inner)]));
  for (const name of FACADE_READ_WRITE) {
    Object.defineProperty(responseStream, name, {
      get: () => inner[name],
      set: (value) => {
        inner[name] = value;
      },
    });
  }
  for (const name of FACADE_READ_ONLY) {
    Object.defineProperty(responseStream, name, { get: () => inner[name] });
  }

  const fail = (error, callback) => {
    const response = toRapidResponse(error);
    inner.trailers = {
      type: response.errorType,
      body: Buffer.from(JSON.stringify(response)).toString("base64"),
    };
    origEnd(callback);
  };
  return { responseStream, responseDone: inner.answer, fail };
}
