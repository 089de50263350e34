// Pure helpers of the Generation panel (DOM-free, unit-tested): reading the option fields, and
// whether the seed matters (it does not at temperature 0: greedy decoding draws nothing).
import type { GenerateOptions } from '../../src/shared/runsProtocol';
import { LIMITS } from '../../src/shared/validate';

/** Whether the sampler's seed is used at this temperature (as typed): not when it is exactly 0. */
export function seedUsed(temperature: string): boolean {
  const t = temperature.trim();
  return !(t !== '' && Number(t) === 0);
}

/** The options from the fields' text, or the message of the first invalid one. */
export function parseGenerateFields(f: { tokens: string; temperature: string; seed: string }): GenerateOptions | string {
  const num = (s: string) => (s.trim() === '' ? NaN : Number(s));
  const maxTokens = num(f.tokens);
  const temperature = num(f.temperature);
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > LIMITS.maxTokens) return `Tokens: a whole number from 1 to ${LIMITS.maxTokens}`;
  if (!Number.isFinite(temperature) || temperature < 0 || temperature > LIMITS.temperature) return `Temperature: a number from 0 (greedy) to ${LIMITS.temperature}`;
  const seed = num(f.seed);
  const seedOk = Number.isInteger(seed) && seed >= 0 && seed <= LIMITS.seed;
  // greedy: the seed is not used (and its field is disabled), so a bad value there does not block
  if (temperature === 0) return { maxTokens, temperature, seed: seedOk ? seed : 0 };
  if (!seedOk) return `Seed: a whole number from 0 to ${LIMITS.seed}`;
  return { maxTokens, temperature, seed };
}
