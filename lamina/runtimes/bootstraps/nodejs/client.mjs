/**
 * The Runtime API 2018-06-01 over one keep-alive TCP socket, with a minimal HTTP/1.1 client.
 *
 * Hot path: the result (or error) and the next GET /next leave in one write, so a warm invoke costs one round trip.
 * It relies on the Runtime API answering with Content-Length (never chunked) and in request order (pipelining), as
 * Lamina's does. The socket is referenced only while an answer is awaited, so an idle socket never keeps the event
 * loop alive: the callback handler contract (respond when the loop is empty) depends on that.
 */
import net from "node:net";
import { toRapidResponse, xrayCause } from "./errors.mjs";

const PREFIX = "/2018-06-01/runtime/";
const USER_AGENT = `aws-lambda-nodejs/${process.version}-lamina`;

/** Header values must stay one line of ASCII; JSON keeps its meaning when non-ASCII is \u-escaped. */
function asciiHeader(value) {
  return value.replace(/[^\x20-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function serialize(body) {
  let text;
  try {
    text = JSON.stringify(body === undefined ? null : body);
  } catch {
    throw new Error("Unable to stringify response body");
  }
  return text ?? "null";
}

function fatal(message) {
  process.stderr.write(`Lamina runtime: ${message}\n`);
  process.exit(1);
}

export class RuntimeApiClient {
  constructor(address) {
    const colon = address.lastIndexOf(":");
    this.host = address;
    this.nextRequest = `GET ${PREFIX}invocation/next HTTP/1.1\r\nHost: ${address}\r\nUser-Agent: ${USER_AGENT}\r\n\r\n`;
    this.waiting = [];
    this.chunks = [];
    this.size = 0;
    this.head = null;
    this.prefetched = null;
    const host = address.slice(0, colon).replace(/^\[|\]$/g, "");
    this.socket = net.connect({ host, port: Number(address.slice(colon + 1)) });
    this.socket.setNoDelay(true);
    this.socket.unref();
    this.socket.on("data", (chunk) => this.onData(chunk));
    this.socket.on("error", (error) => fatal(`lost the Runtime API: ${error.message}`));
    this.socket.on("close", () => fatal("lost the Runtime API: the connection closed"));
  }

  /** Resolves with {headers (lower-cased names), body (string)} of the next invocation. */
  async nextInvocation() {
    const pending = this.prefetched ?? this.send(this.nextRequest, 1)[0];
    this.prefetched = null;
    const { status, headers, body } = await pending;
    if (status !== 200 || !headers["lambda-runtime-aws-request-id"]) {
      fatal(`GET next failed with ${status}: ${body}`);
    }
    return { headers, body: body.toString("utf8") };
  }

  /** Serialising happens first and may throw ("Unable to stringify response body") before anything is sent. */
  postInvocationResponse(result, id, callback, prefetchNext = true) {
    this.post(`invocation/${encodeURIComponent(id)}/response`, serialize(result), "", callback, prefetchNext);
  }

  postInvocationError(error, id, callback, prefetchNext = true) {
    const cause = xrayCause(error);
    const extra = cause ? `Lambda-Runtime-Function-XRay-Error-Cause: ${asciiHeader(cause)}\r\n` : "";
    const body = serialize(toRapidResponse(error));
    this.post(`invocation/${encodeURIComponent(id)}/error`, body, extra, callback, prefetchNext);
  }

  postInitError(error, callback) {
    const response = toRapidResponse(error);
    const extra = `Lambda-Runtime-Function-Error-Type: ${asciiHeader(String(response.errorType))}\r\n`;
    this.post("init/error", serialize(response), extra, callback, false);
  }

  /**
   * POST `body`, then run `callback` once it is accepted. With `prefetchNext` the GET /next rides in the same write;
   * callers about to exit must not prefetch, or Lamina could hand this dying process another invocation.
   */
  post(path, body, extraHeaders, callback, prefetchNext) {
    const head =
      `POST ${PREFIX}${path} HTTP/1.1\r\nHost: ${this.host}\r\nUser-Agent: ${USER_AGENT}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n`;
    const [posted, next] = this.send(head + body + (prefetchNext ? this.nextRequest : ""), prefetchNext ? 2 : 1);
    if (next) {
      this.prefetched = next;
    }
    posted.then(({ status, body: answer }) => {
      // A 413 means Lamina already failed the invocation with Function.ResponseSizeTooLarge; the runtime is fine.
      if (status !== 202 && !(status === 413 && path.endsWith("/response"))) {
        fatal(`POST ${path} failed with ${status}: ${answer}`);
      }
      callback();
    });
  }

  send(data, answers) {
    this.socket.write(data);
    const pending = [];
    for (let i = 0; i < answers; i++) {
      pending.push(new Promise((resolve) => this.waiting.push(resolve)));
    }
    this.socket.ref();
    return pending;
  }

  onData(chunk) {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.waiting.length > 0 && this.parseOne()) {
      if (this.waiting.length === 0) {
        this.socket.unref();
      }
    }
  }

  /** Resolve the oldest waiter if a whole response is buffered; body chunks are joined once, when complete. */
  parseOne() {
    if (this.head === null) {
      const buffer = this.flatten();
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) {
        return false;
      }
      const lines = buffer.toString("utf8", 0, end).split("\r\n");
      const headers = {};
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i].indexOf(":");
        headers[lines[i].slice(0, colon).trim().toLowerCase()] = lines[i].slice(colon + 1).trim();
      }
      const start = end + 4;
      const stop = start + Number(headers["content-length"] ?? 0);
      this.head = { status: Number(lines[0].split(" ")[1]), headers, start, stop };
    }
    const { status, headers, start, stop } = this.head;
    if (this.size < stop) {
      return false;
    }
    const buffer = this.flatten();
    const rest = buffer.subarray(stop);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    this.head = null;
    this.waiting.shift()({ status, headers, body: buffer.subarray(start, stop) });
    return true;
  }

  flatten() {
    if (this.chunks.length > 1) {
      this.chunks = [Buffer.concat(this.chunks, this.size)];
    }
    return this.chunks[0] ?? Buffer.alloc(0);
  }
}
