/**
 * Lamina's Node.js runtime: runs `_HANDLER` against the Lambda Runtime API 2018-06-01.
 *
 * Lamina starts it as `node <runtime dir>/nodejs/bootstrap.mjs` with cwd = LAMBDA_TASK_ROOT. What a function can
 * observe mirrors aws-lambda-ric 3.3.0, the client behind AWS's managed Node.js runtimes: handler styles
 * (async, callback, context.succeed/fail/done), the context object, log lines, error payloads, init error types
 * and the exit codes after an uncaught exception (129) or unhandled rejection (128); and response streaming
 * (`awslambda.streamifyResponse`, streaming.mjs).
 */
import { beforeExit, buildCallbackContext, InvokeContext } from "./context.mjs";
import { patchConsole } from "./console.mjs";
import { RuntimeApiClient } from "./client.mjs";
import { UnhandledPromiseRejection } from "./errors.mjs";
import { loadHandler } from "./loader.mjs";
import { createResponseStream, handlerMetadata, StreamConnection } from "./streaming.mjs";

function isPromise(value) {
  return value && typeof value.then === "function";
}

class Runtime {
  constructor(client, handler, errorCallbacks, logError, metadata = { streaming: false }) {
    this.client = client;
    this.handler = handler;
    this.errorCallbacks = errorCallbacks;
    this.logError = logError;
    this.metadata = metadata;
    if (metadata.streaming) {
      this.streams = new StreamConnection(process.env.AWS_LAMBDA_RUNTIME_API);
      this.handleOnce = this.handleOnceStreaming;
    }
  }

  /** Start the next iteration on the next turn of the event loop. */
  scheduleIteration() {
    setImmediate(() =>
      this.handleOnce().catch((error) => {
        console.log(`Unexpected Top Level Error: ${error.toString()}`);
        this.errorCallbacks.uncaughtException(error);
      }),
    );
  }

  async handleOnce() {
    const { headers, body } = await this.client.nextInvocation();
    const invokeContext = new InvokeContext(headers);
    invokeContext.updateLoggingContext();
    const id = invokeContext.invokeId;
    const [callback, callbackContext, markCompleted] = buildCallbackContext(
      this.client,
      id,
      () => this.scheduleIteration(),
      this.logError,
    );
    try {
      this.setErrorCallbacks(id);
      // A handler that neither returns a promise nor calls back gets a null result once the event loop drains.
      beforeExit.set(() => {
        markCompleted();
        this.client.postInvocationResponse(null, id, () => this.scheduleIteration());
      });
      const result = this.handler(JSON.parse(body), invokeContext.attachEnvironmentData(callbackContext), callback);
      if (isPromise(result)) {
        result.then(callbackContext.succeed, callbackContext.fail).catch(callbackContext.fail);
      }
    } catch (error) {
      callback(error);
    }
  }

  /**
   * A streamified handler: `handler(event, responseStream, context)` must return a promise and end the stream; an
   * error before or while it streams is reported in the stream's trailers. As aws-lambda-ric's handleOnceStreaming.
   */
  async handleOnceStreaming() {
    const { headers, body } = await this.client.nextInvocation();
    const invokeContext = new InvokeContext(headers);
    invokeContext.updateLoggingContext();
    const id = invokeContext.invokeId;
    let waitForEmptyEventLoop = true;
    const streamingContext = {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyEventLoop = value;
      },
    };
    const highWaterMark = this.metadata.highWaterMark;
    const { responseStream, responseDone, fail } = createResponseStream(
      this.streams,
      id,
      highWaterMark ? { highWaterMark } : {},
    );
    const scheduleNext = () => {
      beforeExit.reset();
      if (!waitForEmptyEventLoop) {
        this.scheduleIteration();
      } else {
        beforeExit.set(() => setImmediate(() => this.scheduleIteration()));
      }
    };
    const ctxFail = (error, callback) => {
      this.logError("Invoke Error", error);
      fail(error, callback);
    };
    try {
      this.setErrorCallbacks(id);
      beforeExit.set(() => this.scheduleIteration());
      const context = invokeContext.attachEnvironmentData(streamingContext);
      const result = this.handler(JSON.parse(body), responseStream, context);
      if (!isPromise(result)) {
        ctxFail("Streaming does not support non-async handlers.", scheduleNext);
        return;
      }
      if ((await result) !== undefined) {
        console.warn("Streaming handlers ignore return values.");
      }
      await responseDone;
      if (!responseStream.writableFinished && responseStream.writableEnded) {
        // Answered before the last chunk left (the environment ended the invocation): let "finish" come first.
        await new Promise((resolve) => responseStream.once("finish", resolve).once("close", resolve));
      }
      if (!responseStream.writableFinished) {
        ctxFail("Response stream is not finished.", scheduleNext);
        return;
      }
      scheduleNext();
    } catch (error) {
      ctxFail(error, scheduleNext);
    }
  }

  /** Failures outside the handler's own call chain fail the current invocation, then end the process. */
  setErrorCallbacks(id) {
    this.errorCallbacks.uncaughtException = (error) =>
      this.client.postInvocationError(error, id, () => process.exit(129), false);
    this.errorCallbacks.unhandledRejection = (error) =>
      this.client.postInvocationError(error, id, () => process.exit(128), false);
  }
}

async function main() {
  const logError = patchConsole();
  const client = new RuntimeApiClient(process.env.AWS_LAMBDA_RUNTIME_API);
  const errorCallbacks = {
    uncaughtException: (error) => client.postInitError(error, () => process.exit(129)),
    unhandledRejection: (error) => client.postInitError(error, () => process.exit(128)),
  };
  const onUncaught = (error) => {
    logError("Uncaught Exception", error);
    errorCallbacks.uncaughtException(error);
  };
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", (reason, promise) => {
    const error = new UnhandledPromiseRejection(reason, promise);
    logError("Unhandled Promise Rejection", error);
    errorCallbacks.unhandledRejection(error);
  });
  beforeExit.reset();
  process.on("beforeExit", beforeExit.invoke);
  let handler;
  let metadata;
  try {
    handler = await loadHandler(process.env.LAMBDA_TASK_ROOT || process.cwd(), process.env._HANDLER ?? "");
    metadata = handlerMetadata(handler);
  } catch (error) {
    onUncaught(error);
    return;
  }
  new Runtime(client, handler, errorCallbacks, logError, metadata).scheduleIteration();
}

await main();
