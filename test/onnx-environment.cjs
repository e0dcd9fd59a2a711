/**
 * Jest environment for test files that run ONNX models (a `@jest-environment` docblock selects
 * it per file). onnxruntime-node's native binding returns typed arrays of Node's main realm,
 * while code under test runs in jest's VM sandbox, whose Float32Array is another constructor:
 * onnxruntime-common's `instanceof` checks then refuse the model's own outputs. Giving the
 * sandbox the main realm's typed-array constructors makes them one again, as in production.
 */
/* global require, module */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- jest loads environments as CommonJS
const { TestEnvironment } = require('jest-environment-node');

class OnnxEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of ['Float32Array', 'Float64Array', 'Int8Array', 'Uint8Array', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'ArrayBuffer']) {
      this.global[name] = globalThis[name];
    }
  }
}

module.exports = OnnxEnvironment;
