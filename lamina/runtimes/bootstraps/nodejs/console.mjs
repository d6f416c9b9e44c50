/**
 * The console as AWS's Node.js runtimes patch it: every line carries a timestamp, the request id and the level
 * (`<iso>\t<requestId>\tINFO\t<msg>`, or one JSON object per line for LogFormat JSON), honours
 * AWS_LAMBDA_LOG_LEVEL, and turns embedded newlines into \r so one call stays one log line.
 */
import util from "node:util";
import { intoError, toFormatted } from "./errors.mjs";

// Global symbols, as aws-lambda-ric keeps them, so tools reading the current request id find it.
const REQUEST_ID = Symbol.for("aws.lambda.runtime.requestId");
const TENANT_ID = Symbol.for("aws.lambda.runtime.tenantId");

export function setCurrentRequestId(id) {
  globalThis[REQUEST_ID] = id;
}

export function setCurrentTenantId(id) {
  globalThis[TENANT_ID] = id;
}

const LEVELS = Object.freeze({
  TRACE: { name: "TRACE", priority: 1 },
  DEBUG: { name: "DEBUG", priority: 2 },
  INFO: { name: "INFO", priority: 3 },
  WARN: { name: "WARN", priority: 4 },
  ERROR: { name: "ERROR", priority: 5 },
  FATAL: { name: "FATAL", priority: 6 },
});

function jsonErrorReplacer(_key, value) {
  if (value instanceof Error) {
    return Object.assign(
      {
        errorType: value?.constructor?.name ?? "UnknownError",
        errorMessage: value.message,
        stackTrace: typeof value.stack === "string" ? value.stack.split("\n") : value.stack,
      },
      value,
    );
  }
  return value;
}

function formatJson(level, message, params) {
  const result = { timestamp: new Date().toISOString(), level: level.name, requestId: globalThis[REQUEST_ID] };
  const tenantId = globalThis[TENANT_ID];
  if (tenantId !== undefined && tenantId !== null) {
    result.tenantId = tenantId;
  }
  if (params.length === 0) {
    result.message = message;
    try {
      return JSON.stringify(result, jsonErrorReplacer);
    } catch {
      result.message = util.format(result.message);
      return JSON.stringify(result);
    }
  }
  result.message = util.format(message, ...params);
  for (const param of [message, ...params]) {
    if (param instanceof Error) {
      result.errorType = param?.constructor?.name ?? "UnknownError";
      result.errorMessage = param.message;
      result.stackTrace = typeof param.stack === "string" ? param.stack.split("\n") : [];
      break;
    }
  }
  return JSON.stringify(result);
}

function logText(level, message, params) {
  const text = util.format(message, ...params);
  const line = `${new Date().toISOString()}\t${globalThis[REQUEST_ID]}\t${level.name}\t${text}`;
  process.stdout.write(line.replace(/\n/g, "\r") + "\n");
}

function logJson(level, message, params) {
  process.stdout.write(formatJson(level, message, params).replace(/\n/g, "\r") + "\n");
}

/** Patch console.*; returns how the runtime logs an error (`logError("Invoke Error", err)`). */
export function patchConsole() {
  const json = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === "JSON";
  const log = json ? logJson : logText;
  const threshold = LEVELS[process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? LEVELS.TRACE;
  const method = (level) =>
    level.priority >= threshold.priority ? (message, ...params) => log(level, message, params) : () => {};
  console.trace = method(LEVELS.TRACE);
  console.debug = method(LEVELS.DEBUG);
  console.info = method(LEVELS.INFO);
  console.log = console.info;
  console.warn = method(LEVELS.WARN);
  console.error = method(LEVELS.ERROR);
  console.fatal = (message, ...params) => log(LEVELS.FATAL, message, params);
  if (json) {
    return (_message, error) => console.error(intoError(error));
  }
  return (message, error) => console.error(message, toFormatted(intoError(error)));
}
