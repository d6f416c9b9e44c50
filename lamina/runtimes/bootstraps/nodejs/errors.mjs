/**
 * Errors as aws-lambda-ric reports them: the Runtime API payload ({errorType, errorMessage, trace}), the text
 * form it logs, the X-Ray cause header, and the `Runtime.*` error classes of handler loading.
 */
import util from "node:util";

function isErrorLike(value) {
  return Boolean(
    value &&
      typeof value.name === "string" && value.name &&
      typeof value.message === "string" && value.message &&
      typeof value.stack === "string" && value.stack,
  );
}

/** The log shows a thrown non-Error as an Error, so logs always carry a stack. */
export function intoError(value) {
  return value instanceof Error ? value : new Error(value);
}

export function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: error.name?.replace(/\x7F/g, "%7F"),
        errorMessage: error.message?.replace(/\x7F/g, "%7F"),
        trace: error.stack.replace(/\x7F/g, "%7F").split("\n"),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch {
    return {
      errorType: "handled",
      errorMessage:
        "callback called with Error argument, but there was a problem while retrieving one or more of its " +
        "message, name, and stack",
    };
  }
}

function withEnumerableProperties(value) {
  if (!(value instanceof Error)) {
    return value;
  }
  const result = Object.assign({ errorType: value.name, errorMessage: value.message, code: value.code }, value);
  if (typeof value.stack === "string") {
    result.stack = value.stack.split("\n");
  }
  return result;
}

/** The tab-prefixed JSON that follows "Invoke Error" / "Uncaught Exception" in text logs. */
export function toFormatted(error) {
  try {
    return "\t" + JSON.stringify(error, (_key, value) => withEnumerableProperties(value));
  } catch {
    return "\t" + JSON.stringify(toRapidResponse(error));
  }
}

/** The Lambda-Runtime-Function-XRay-Error-Cause document, or "" when the error cannot be described. */
export function xrayCause(error) {
  try {
    const stack = [];
    if (error.stack) {
      const lines = error.stack.replace(/\x7F/g, "%7F").split("\n");
      lines.shift();
      for (const stackLine of lines) {
        let line = stackLine.trim().replace(/\(|\)/g, "");
        line = line.substring(line.indexOf(" ") + 1);
        const label = line.lastIndexOf(" ") >= 0 ? line.slice(0, line.lastIndexOf(" ")) : null;
        const location = (label ? line.slice(line.lastIndexOf(" ") + 1) : line).split(":");
        stack.push({ path: location[0], line: parseInt(location[1]), label: label || "anonymous" });
      }
    }
    return JSON.stringify({
      working_directory: process.cwd(),
      exceptions: [
        { type: error.name?.replace(/\x7F/g, "%7F"), message: error.message?.replace(/\x7F/g, "%7F"), stack },
      ],
      paths: Array.from(new Set(stack.map((entry) => entry.path))),
    });
  } catch {
    return "";
  }
}

export class ImportModuleError extends Error {}
export class HandlerNotFound extends Error {}
export class MalformedHandlerName extends Error {}
export class UserCodeSyntaxError extends Error {}
export class MalformedStreamingHandler extends Error {}
export class InvalidStreamingOperation extends Error {}
export class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}

for (const errorClass of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  MalformedStreamingHandler,
  InvalidStreamingOperation,
  UnhandledPromiseRejection,
]) {
  errorClass.prototype.name = `Runtime.${errorClass.name}`;
}
