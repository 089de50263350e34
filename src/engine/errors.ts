// One error type for everything a user can get wrong. Its message is a single line that names the
// file (or argument) and says what is wrong and how to fix it; callers print it without a stack.

export type ErrorCode =
  | 'BAD_ARGUMENT' // CLI/protocol arguments: exit code 2
  | 'MODEL' // model folder, config, weights
  | 'TOKENIZER'
  | 'PROMPT'
  | 'RUNTIME' // onnxruntime failures, worker crashes
  | 'NUMERIC' // the model produced NaN or Infinity (float32 overflow, bad weights)
  | 'CANCELLED';

export class EngineError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message.replace(/\s*\n\s*/g, ' '));
    this.name = 'EngineError';
  }
}

export function isEngineError(e: unknown): e is EngineError {
  return e instanceof EngineError;
}

/** A one-line description of any thrown value, for places that must never print a stack. */
export function oneLine(e: unknown): string {
  if (e instanceof Error) return e.message.split('\n')[0] ?? String(e);
  return String(e).split('\n')[0] ?? '';
}
