/**
 * The handler's context and callback, with aws-lambda-ric's semantics: callback/done/succeed/fail may complete an
 * invocation once, and with callbackWaitsForEmptyEventLoop (the default) a callback result is only posted once the
 * event loop has drained, which the process's `beforeExit` event signals.
 */
import { setCurrentRequestId, setCurrentTenantId } from "./console.mjs";

// A global symbol, like aws-lambda-ric's, so there is one listener slot however this module is loaded.
const BEFORE_EXIT = Symbol.for("aws.lambda.beforeExit");
const NO_OP = () => {};

export const beforeExit = {
  invoke: () => globalThis[BEFORE_EXIT](),
  reset: () => {
    globalThis[BEFORE_EXIT] = NO_OP;
  },
  set: (listener) => {
    globalThis[BEFORE_EXIT] = listener;
  },
};

function parseJsonHeader(value, name) {
  if (value === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new Error(`Cannot parse ${name} as json: ${error.toString()}`);
  }
}

/** What one GET /next carried; `headers` names are lower-case. */
export class InvokeContext {
  constructor(headers) {
    this.headers = headers;
    this.invokeId = headers["lambda-runtime-aws-request-id"];
  }

  updateLoggingContext() {
    setCurrentRequestId(this.invokeId);
    setCurrentTenantId(this.headers["lambda-runtime-aws-tenant-id"]);
  }

  /** Fill the callback context with the invocation's data; the property order matches AWS's context. */
  attachEnvironmentData(callbackContext) {
    const headers = this.headers;
    const traceId = headers["lambda-runtime-trace-id"];
    if (traceId) {
      process.env._X_AMZN_TRACE_ID = traceId;
    } else {
      delete process.env._X_AMZN_TRACE_ID;
    }
    const deadline = Number(headers["lambda-runtime-deadline-ms"]);
    return Object.assign(
      callbackContext,
      {
        functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
        functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
        memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
        logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
        logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      },
      {
        clientContext: parseJsonHeader(headers["lambda-runtime-client-context"], "ClientContext"),
        identity: parseJsonHeader(headers["lambda-runtime-cognito-identity"], "CognitoIdentity"),
        invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
        awsRequestId: this.invokeId,
        tenantId: headers["lambda-runtime-aws-tenant-id"],
        getRemainingTimeInMillis: () => deadline - Date.now(),
      },
    );
  }
}

/**
 * Returns [callback, callbackContext, markCompleted] for one invocation; `scheduleNext` starts the next iteration
 * once the outcome is posted.
 */
export function buildCallbackContext(client, id, scheduleNext, logError) {
  const postError = (error, callback) => {
    logError("Invoke Error", error);
    client.postInvocationError(error, id, callback);
  };
  let isCompleteInvoked = false;
  const complete = (result, callback) => {
    if (isCompleteInvoked) {
      console.error(
        "Invocation has already been reported as done. Cannot call complete more than once per invocation.",
      );
      return;
    }
    isCompleteInvoked = true;
    client.postInvocationResponse(result, id, callback);
  };
  let waitForEmptyEventLoop = true;
  const callback = (error, result) => {
    beforeExit.reset();
    if (error !== undefined && error !== null) {
      postError(error, scheduleNext);
    } else if (!waitForEmptyEventLoop) {
      complete(result, scheduleNext);
    } else {
      beforeExit.set(() => setImmediate(() => complete(result, scheduleNext)));
    }
  };
  const done = (error, result) => {
    beforeExit.reset();
    if (error !== undefined && error !== null) {
      postError(error, scheduleNext);
    } else {
      complete(result, scheduleNext);
    }
  };
  const callbackContext = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: (result) => done(null, result),
    fail: (error) => (error === undefined || error === null ? done("handled") : done(error, null)),
    done,
  };
  // Only the first of callback/succeed/fail/done counts; one that throws (say, an unserialisable result) does not.
  let finished = false;
  const firstCallOnly = (fn) =>
    function (...args) {
      if (!finished) {
        fn(...args);
        finished = true;
      }
    };
  callbackContext.succeed = firstCallOnly(callbackContext.succeed);
  callbackContext.fail = firstCallOnly(callbackContext.fail);
  callbackContext.done = firstCallOnly(callbackContext.done);
  return [firstCallOnly(callback), callbackContext, () => (isCompleteInvoked = true)];
}
