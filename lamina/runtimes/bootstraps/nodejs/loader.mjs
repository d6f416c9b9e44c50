/**
 * Resolves `_HANDLER` (`file.fn`, `dir/file.obj.fn`) to a function the way aws-lambda-ric does: try the bare path,
 * then `.js` (CommonJS unless a package.json says "type": "module"), `.mjs`, `.cjs`, then Node resolution; failures
 * become the Runtime.* errors AWS reports. The global `awslambda` (streaming.mjs) is set before the code loads.
 */
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { HandlerNotFound, ImportModuleError, MalformedHandlerName, UserCodeSyntaxError } from "./errors.mjs";
import { installAwsLambdaGlobal } from "./streaming.mjs";

const require = createRequire(import.meta.url);
const FUNCTION_EXPR = /^([^.]*)\.(.*)$/;

function tryRequireFile(file, extension = "") {
  const candidate = file + extension;
  return fs.existsSync(candidate) ? require(candidate) : undefined;
}

async function tryImportFile(file, extension) {
  const candidate = file + extension;
  return fs.existsSync(candidate) ? await import(pathToFileURL(candidate).href) : undefined;
}

function folderIsModuleType(folder) {
  if (folder.endsWith("/node_modules")) {
    return false;
  }
  const manifest = path.join(folder, "package.json");
  if (fs.existsSync(manifest)) {
    try {
      return JSON.parse(fs.readFileSync(manifest)).type === "module";
    } catch (error) {
      console.warn(`${manifest} cannot be read, it will be ignored for ES module detection purposes.`, error);
      return false;
    }
  }
  return folder === "/" ? false : folderIsModuleType(path.resolve(folder, ".."));
}

async function loadModule(appRoot, moduleRoot, moduleName) {
  const lambdaStylePath = path.resolve(appRoot, moduleRoot, moduleName);
  const extensionless = tryRequireFile(lambdaStylePath);
  if (extensionless) {
    return extensionless;
  }
  const jsPath = lambdaStylePath + ".js";
  const isModuleType = fs.existsSync(jsPath) && folderIsModuleType(path.dirname(jsPath));
  if (!isModuleType) {
    const commonJs = tryRequireFile(lambdaStylePath, ".js");
    if (commonJs) {
      return commonJs;
    }
  }
  const loaded =
    (isModuleType && (await tryImportFile(lambdaStylePath, ".js"))) ||
    (await tryImportFile(lambdaStylePath, ".mjs")) ||
    tryRequireFile(lambdaStylePath, ".cjs");
  if (loaded) {
    return loaded;
  }
  return require(require.resolve(moduleName, { paths: [appRoot, moduleRoot] }));
}

export async function loadHandler(appRoot, fullHandlerString) {
  if (fullHandlerString.includes("..")) {
    throw new MalformedHandlerName(
      `'${fullHandlerString}' is not a valid handler name. ` +
        "Use absolute paths when specifying root directories in handler names.",
    );
  }
  const moduleAndHandler = path.basename(fullHandlerString);
  const moduleRoot = fullHandlerString.substring(0, fullHandlerString.indexOf(moduleAndHandler));
  const match = moduleAndHandler.match(FUNCTION_EXPR);
  if (!match) {
    throw new MalformedHandlerName("Bad handler");
  }
  const [, moduleName, handlerPath] = match;
  installAwsLambdaGlobal(); // before the function's code runs: it may call awslambda.streamifyResponse at load
  let userApp;
  try {
    userApp = await loadModule(appRoot, moduleRoot, moduleName);
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new UserCodeSyntaxError(error);
    }
    if (error?.code === "MODULE_NOT_FOUND") {
      throw new ImportModuleError(error);
    }
    throw error;
  }
  const handler = handlerPath.split(".").reduce((nested, key) => nested && nested[key], userApp);
  if (!handler) {
    throw new HandlerNotFound(`${fullHandlerString} is undefined or not exported`);
  }
  if (typeof handler !== "function") {
    throw new HandlerNotFound(`${fullHandlerString} is not a function`);
  }
  return handler;
}
